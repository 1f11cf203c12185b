
import os
import psycopg

_conn = None


def application(environ, start_response):
    global _conn
    if _conn is None:
        _conn = psycopg.connect(os.environ["BENCH_BASELINE_DSN"], autocommit=True)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    _conn.execute("INSERT INTO raw_event (body) VALUES (%s)", [body.decode("utf-8")])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
