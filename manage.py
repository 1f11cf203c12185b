#!/usr/bin/env python
import sys


def main() -> None:
    # Production unless DJANGO_SETTINGS_MODULE (environment or .env) says otherwise.
    from config.entrypoint import settings_module_choose

    settings_module_choose()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
