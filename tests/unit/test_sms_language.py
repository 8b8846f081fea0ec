"""SMS texts in the responder's language: alert, cancellation and questionnaire link, read from
the committed catalogues (`alarm_core.wire.sms_text`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alarm_core.wire import alert_payload, cancel_payload, sms_text

SENT_AT = datetime(2026, 6, 17, 10, 0, tzinfo=UTC)
VICTIM = {"lat": 52.37, "lon": 4.89, "address": None}
AED = {"aed_id": "aed-7", "lat": 52.3712345, "lon": 4.8923456, "access_code": "4711",
       "location_hint": "left of the pharmacy door"}
QUESTIONNAIRE = {"v": 1, "incident_id": "inc-1", "url": "https://aed.example/q/tok3n",
                 "expires_at": "2026-06-20T10:00:00Z"}

FETCH = {
    None: "aedfleet RESUSCITATION ALARM: fetch the AED at 52.37123,4.89235 (left of the pharmacy "
          "door) and bring it to 52.37000,4.89000.",
    "nl": "aedfleet REANIMATIE-ALARM: haal de AED bij 52.37123,4.89235 (left of the pharmacy "
          "door) en breng hem naar 52.37000,4.89000.",
    "de": "aedfleet REANIMATIONSALARM: Holen Sie den AED bei 52.37123,4.89235 (left of the "
          "pharmacy door) und bringen Sie ihn zu 52.37000,4.89000.",
    "fr": "aedfleet ALERTE RÉANIMATION : allez chercher le DAE à 52.37123,4.89235 (left of the "
          "pharmacy door) et apportez-le à 52.37000,4.89000.",
}
CPR = {
    None: "aedfleet RESUSCITATION ALARM: go to Dam 1 and start CPR.",
    "nl": "aedfleet REANIMATIE-ALARM: ga naar Dam 1 en start de reanimatie.",
    "de": "aedfleet REANIMATIONSALARM: Gehen Sie zu Dam 1 und beginnen Sie mit der "
          "Herzdruckmassage.",
    "fr": "aedfleet ALERTE RÉANIMATION : rendez-vous à Dam 1 et commencez la RCP.",
}
CANCEL = {
    None: "aedfleet: alarm inc-1 cancelled (enough responders are on their way). Thank you.",
    "nl": "aedfleet: alarm inc-1 ingetrokken (er zijn genoeg burgerhulpverleners onderweg). "
          "Bedankt.",
    "de": "aedfleet: Alarm inc-1 aufgehoben (genug Ersthelfer sind unterwegs). Danke.",
    "fr": "aedfleet : alerte inc-1 annulée (suffisamment de citoyens sauveteurs sont en route). "
          "Merci.",
}
# The questionnaire closes at 10:00 UTC: 12:00 in Amsterdam (summer time), written locally.
ASK = {
    None: "aedfleet: thank you for responding to alarm inc-1. How did it go? "
          "https://aed.example/q/tok3n (open until 20/06/2026, 12:00)",
    "nl": "aedfleet: bedankt voor uw inzet bij alarm inc-1. Hoe ging het? "
          "https://aed.example/q/tok3n (open tot 20-06-2026, 12:00)",
    "de": "aedfleet: Danke für Ihren Einsatz bei Alarm inc-1. Wie ist es gelaufen? "
          "https://aed.example/q/tok3n (offen bis 20.06.26, 12:00)",
    "fr": "aedfleet : merci d'avoir répondu à l'alerte inc-1. Comment cela s'est-il passé ? "
          "https://aed.example/q/tok3n (ouvert jusqu'au 20/06/2026 12:00)",
}
RENEW = {
    None: "aedfleet: your CPR/AED certificate is valid until 31 Jan 2027. Renew it in time to "
          "keep receiving alarms.",
    "nl": "aedfleet: uw reanimatie/AED-certificaat is geldig tot 31 jan 2027. Vernieuw het op "
          "tijd om alarmeringen te blijven ontvangen.",
    "de": "aedfleet: Ihr HLW/AED-Nachweis ist gültig bis 31.01.2027. Erneuern Sie ihn "
          "rechtzeitig, um weiter alarmiert zu werden.",
    "fr": "aedfleet : votre certificat RCP/DAE est valable jusqu'au 31 janv. 2027. "
          "Renouvelez-le à temps pour continuer à recevoir des alertes.",
}
LANGUAGES = [None, "nl", "de", "fr"]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("app", [True, False], ids=["app payload", "sms payload"])
def test_an_alert_to_fetch_the_aed_is_in_the_responders_language_without_the_code(
        language: str | None, app: bool) -> None:
    text = sms_text(alert_payload("inc-1", "fetch_aed", VICTIM, AED, SENT_AT, app=app), language)
    assert text == FETCH[language]
    assert "4711" not in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_alert_to_start_cpr_names_the_address_in_the_responders_language(
        language: str | None) -> None:
    payload = alert_payload("inc-1", "cpr", {**VICTIM, "address": "Dam 1"}, None, SENT_AT,
                            app=False)
    assert sms_text(payload, language) == CPR[language]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_cancellation_is_in_the_responders_language(language: str | None) -> None:
    assert sms_text(cancel_payload("inc-1", "enough_responders"), language) == CANCEL[language]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_questionnaire_link_is_in_the_responders_language(language: str | None) -> None:
    assert sms_text(QUESTIONNAIRE, language, "Europe/Amsterdam") == ASK[language]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_certificate_reminder_is_in_the_responders_language(language: str | None) -> None:
    payload = {"v": 1, "kind": "certificate_expiring", "valid_until": "2027-01-31",
               "message": "your CPR/AED certificate is valid until 2027-01-31"}
    assert sms_text(payload, language) == RENEW[language]


@pytest.mark.parametrize(("tag", "language"), [("en", None), ("es", None), ("nl-BE", "nl"),
                                             ("de_DE.UTF-8", "de")])
def test_english_for_english_or_an_unknown_language_and_regional_tags_by_their_language(
        tag: str, language: str | None) -> None:
    # The words are the language's; a regional tag writes the date its region's way.
    expected = ASK[language].replace("20-06-2026", "20/06/2026") if tag == "nl-BE" \
        else ASK[language]
    assert sms_text(QUESTIONNAIRE, tag, "Europe/Amsterdam") == expected
