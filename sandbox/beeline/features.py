"""ICR numbers and rules, call forwarding and the recording switch of the emulated PBX.

Paths and field names from docs/beeline-api.md §2–§3 (CONFIRMED in beeline_portal and the Go
client);
what the portal does with them beyond storing is not documented, so the emulator stores,
validates and reads them back. Bulk ICR operations answer one result per item
(``status: SUCCESS|FAULT`` with ``error: {errorCode, description}``), never all-or-nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from sandbox.beeline import clock
from sandbox.beeline.errors import PortalError, bad_request, not_found
from sandbox.beeline.models import Abonent, CfsRule, IcrResult, IcrRoute, Number, Pbx

SUCCESS = "SUCCESS"
FAULT = "FAULT"
_PHONE = re.compile(r"^\+?[\d\s()-]{5,20}$")
CFB_KEYS = (
    "forwardAllCallsPhone",
    "forwardBusyPhone",
    "forwardUnavailablePhone",
    "forwardNotAnswerPhone",
    "forwardNotAnswerTimeout",
)
CFS_KEYS = {"name", "forwardToPhone", "schedule", "phoneList"}


def national(raw: str) -> str | None:
    """The 10 national digits of a Russian number in any usual form, else None."""
    if not isinstance(raw, str) or not _PHONE.match(raw.strip()):
        return None
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits[0] in "78":
        digits = digits[1:]
    return digits if len(digits) == 10 else None


def _fault(error: PortalError) -> dict[str, Any]:
    return {"status": FAULT, "error": error.as_json()}


def _results_log(pbx: Pbx, action: str, results: list[dict[str, Any]]) -> None:
    """Keep what each item of a bulk ICR write got (for the sandbox page)."""
    now = clock.now()
    rows = []
    for item in results:
        rule = item.get("rule") or {}
        error = item.get("error") or {}
        rows.append(
            IcrResult(
                pbx=pbx,
                action=action,
                inbound_number=str(rule.get("inboundNumber") or item.get("phoneNumber") or "")[:60],
                extension=str(rule.get("extension") or "")[:20],
                status=item.get("status", ""),
                error_code=str(error.get("errorCode") or "")[:60],
                description=str(error.get("description") or "")[:300],
                created_at=now,
            )
        )
    IcrResult.objects.bulk_create(rows)


# --- ICR numbers --------------------------------------------------------------------------------


def icr_numbers(*, pbx: Pbx) -> list[Number]:
    return list(pbx.numbers.filter(icr_enabled=True))


def icr_numbers_switch(*, pbx: Pbx, phones: Any, enable: bool) -> list[dict[str, Any]]:
    """PUT (``enable``) or DELETE /icr/numbers with a JSON array of phone numbers."""
    if not isinstance(phones, list) or not phones:
        raise bad_request("Ожидается непустой JSON-массив номеров")
    by_national = {n.phone: n for n in pbx.numbers.all()}
    results = []
    for raw in phones:
        item: dict[str, Any] = {"phoneNumber": raw if isinstance(raw, str) else str(raw)}
        number = by_national.get(national(raw) or "") if isinstance(raw, str) else None
        if number is None:
            item |= _fault(not_found("NumberNotFound", f"Номер {raw} не найден в АТС"))
        else:
            if number.icr_enabled != enable:
                number.icr_enabled = enable
                number.save(update_fields=["icr_enabled"])
            item["status"] = SUCCESS
        results.append(item)
    _results_log(pbx, "numbers " + ("enable" if enable else "disable"), results)
    return results


# --- ICR rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    raw: dict[str, Any]
    national: str
    extension: str


def _rule(pbx: Pbx, raw: Any, *, need_extension: bool) -> _Rule | PortalError:
    if not isinstance(raw, dict) or not isinstance(raw.get("inboundNumber"), str):
        return bad_request("Правило: ожидается {inboundNumber, extension}")
    phone = national(raw["inboundNumber"])
    if phone is None:
        return bad_request(f"inboundNumber {raw['inboundNumber']!r}: нужен номер из 10 цифр")
    extension = raw.get("extension")
    if extension is None and not need_extension:
        return _Rule(raw, phone, "")
    if not isinstance(extension, str) or not extension.strip():
        return bad_request("Правило: поле extension обязательно")
    if not pbx.abonents.filter(extension=extension.strip()).exists():
        return not_found("ExtensionNotFound", f"Добавочный {extension} не найден")
    return _Rule(raw, phone, extension.strip())


def _echo(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return {"inboundNumber": raw.get("inboundNumber"), "extension": raw.get("extension")}
    return {"inboundNumber": None, "extension": None}


def icr_routes(*, pbx: Pbx) -> list[IcrRoute]:
    return list(pbx.icr_routes.all())


def icr_routed_abonent(*, pbx: Pbx, via: Number | None, client_national: str) -> Abonent | None:
    """Whom an inbound call rings first under ICR: the abonent whose extension the caller's
    rule names, when the call came in on a number with ICR on (else None: normal routing)."""
    if via is None or not via.icr_enabled:
        return None
    route = pbx.icr_routes.filter(inbound_national=client_national).first()
    if route is None:
        return None
    return pbx.abonents.filter(extension=route.extension).first()


@transaction.atomic
def icr_routes_change(*, pbx: Pbx, rules: Any, action: str) -> list[dict[str, Any]]:
    """POST (``add``), PUT (``update``) or DELETE (``delete``) /icr/route with a JSON array of
    ``{inboundNumber, extension}``; one result per rule."""
    if not isinstance(rules, list) or not rules:
        raise bad_request("Ожидается непустой JSON-массив правил")
    existing = {r.inbound_national: r for r in pbx.icr_routes.select_for_update()}
    results = []
    for raw in rules:
        result: dict[str, Any] = {"rule": _echo(raw)}
        parsed = _rule(pbx, raw, need_extension=action != "delete")
        if isinstance(parsed, PortalError):
            results.append(result | _fault(parsed))
            continue
        current = existing.get(parsed.national)
        if action == "add":
            if current is not None:
                results.append(
                    result
                    | _fault(PortalError(409, "RuleAlreadyExists", "Правило для номера уже есть"))
                )
                continue
            existing[parsed.national] = IcrRoute.objects.create(
                pbx=pbx,
                inbound_number=parsed.raw["inboundNumber"].strip(),
                inbound_national=parsed.national,
                extension=parsed.extension,
                created_at=clock.now(),
            )
        elif current is None or (
            action == "delete" and parsed.extension and parsed.extension != current.extension
        ):
            results.append(result | _fault(not_found("RuleNotFound", "Правило не найдено")))
            continue
        elif action == "update":
            current.extension = parsed.extension
            current.save(update_fields=["extension"])
        else:
            current.delete()
            del existing[parsed.national]
        results.append(result | {"status": SUCCESS})
    _results_log(pbx, f"route {action}", results)
    return results


# --- Recording switch ---------------------------------------------------------------------------


def recording_set(*, abonent: Abonent, on: bool) -> None:
    abonent.recording = on
    abonent.save(update_fields=["recording"])


# --- Forwarding ---------------------------------------------------------------------------------


def cfb_json(abonent: Abonent) -> dict[str, Any]:
    return {"status": "ON" if abonent.cfb_enabled else "OFF", "cfb": dict(abonent.cfb)}


def cfb_set(*, abonent: Abonent, body: Any) -> None:
    if not isinstance(body, dict) or not body:
        raise bad_request("Ожидается объект с номерами переадресации")
    unknown = set(body) - set(CFB_KEYS)
    if unknown:
        raise bad_request(f"Неизвестное поле: {sorted(unknown)[0]}")
    for key, value in body.items():
        if key == "forwardNotAnswerTimeout":
            if not str(value).isdigit() or not 5 <= int(value) <= 120:
                raise bad_request("forwardNotAnswerTimeout: от 5 до 120 секунд")
        elif national(value) is None and not (isinstance(value, str) and value.isdigit()):
            raise bad_request(f"{key}: ожидается номер телефона")
    abonent.cfb = {k: str(v) for k, v in body.items()}
    abonent.cfb_enabled = True
    abonent.save(update_fields=["cfb", "cfb_enabled"])


def cfb_clear(*, abonent: Abonent) -> None:
    abonent.cfb = {}
    abonent.cfb_enabled = False
    abonent.save(update_fields=["cfb", "cfb_enabled"])


def cfs_rule_json(rule: CfsRule) -> dict[str, Any]:
    return {
        "id": rule.api_id,
        "name": rule.name,
        "forwardToPhone": rule.forward_to_phone,
        "schedule": rule.schedule,
        "phoneList": list(rule.phone_list),
    }


def cfs_json(abonent: Abonent) -> dict[str, Any]:
    return {
        "isCfsServiceEnabled": abonent.cfs_enabled,
        "ruleList": [cfs_rule_json(r) for r in abonent.cfs_rules.all()],
    }


def _cfs_fields(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("Ожидается правило {name, forwardToPhone, schedule, phoneList}")
    unknown = set(body) - CFS_KEYS - {"id"}
    if unknown:
        raise bad_request(f"Неизвестное поле: {sorted(unknown)[0]}")
    missing = CFS_KEYS - set(body)
    if missing:
        raise bad_request(f"Поле {sorted(missing)[0]} обязательно")
    if not isinstance(body["name"], str) or not body["name"].strip():
        raise bad_request("name: пустое название")
    if national(body["forwardToPhone"]) is None:
        raise bad_request("forwardToPhone: ожидается номер телефона")
    if body["schedule"] not in CfsRule.Schedule.values:
        raise bad_request(f"schedule: одно из {', '.join(CfsRule.Schedule.values)}")
    phones = body["phoneList"]
    if not isinstance(phones, list) or not phones or any(national(p) is None for p in phones):
        raise bad_request("phoneList: непустой список номеров телефонов")
    return {
        "name": body["name"].strip(),
        "forward_to_phone": body["forwardToPhone"],
        "schedule": body["schedule"],
        "phone_list": phones,
    }


def cfs_rule_add(*, abonent: Abonent, body: Any) -> CfsRule:
    return CfsRule.objects.create(abonent=abonent, **_cfs_fields(body))


def cfs_rule_find(*, abonent: Abonent, rule_id: str) -> CfsRule:
    pk = CfsRule.pk_from_api_id(rule_id)
    rule = abonent.cfs_rules.filter(pk=pk).first() if pk else None
    if rule is None:
        raise not_found("RuleNotFound", f"Правило {rule_id} не найдено")
    return rule


def cfs_rule_update(*, rule: CfsRule, body: Any) -> None:
    for attr, value in _cfs_fields(body).items():
        setattr(rule, attr, value)
    rule.save()


def cfs_switch(*, abonent: Abonent, on: bool) -> None:
    abonent.cfs_enabled = on
    abonent.save(update_fields=["cfs_enabled"])
