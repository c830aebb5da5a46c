"""Settings.from_env: every section, every field type, errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_offload.config import (
    DEFAULT_API_PORT,
    DEFAULT_ARI_URL,
    DEFAULT_DATA_DIR,
    AgentSettings,
    ApiSettings,
    AriSettings,
    MediaSettings,
    RecordingSettings,
    Settings,
    SpeechSettings,
    StoreSettings,
    check_api_settings,
)
from ari_offload.errors import ConfigError


def test_no_variables_gives_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings().ari.url == DEFAULT_ARI_URL
    assert Settings().api.port == DEFAULT_API_PORT
    assert Settings().store.data_dir == DEFAULT_DATA_DIR


def test_unrelated_variables_are_ignored() -> None:
    env = {"PATH": "/usr/bin", "ARI_OFFLOAD_NOPE_X": "1", "ARI_OFFLOAD_ARI_NOPE": "1"}

    assert Settings.from_env(env) == Settings()


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARI_OFFLOAD_ARI_APP", "from-os-environ")

    assert Settings.from_env().ari.app == "from-os-environ"


def test_recording_section() -> None:
    env = {
        "ARI_OFFLOAD_RECORDING_DIR": "/srv/recordings",
        "ARI_OFFLOAD_RECORDING_MIN_FREE_MB": "200",
        "ARI_OFFLOAD_RECORDING_FLUSH_S": "0.5",
    }
    assert Settings.from_env(env).recording == RecordingSettings(Path("/srv/recordings"), 200, 0.5)
    # Empty: the default place, "recordings" in the data dir.
    assert Settings.from_env({"ARI_OFFLOAD_RECORDING_DIR": ""}).recording.dir is None
    with pytest.raises(ConfigError, match="ARI_OFFLOAD_RECORDING_MIN_FREE_MB='lots'"):
        Settings.from_env({"ARI_OFFLOAD_RECORDING_MIN_FREE_MB": "lots"})


def test_ari_section() -> None:
    env = {
        "ARI_OFFLOAD_ARI_URL": "http://10.0.0.5:8088",
        "ARI_OFFLOAD_ARI_USERNAME": "bot",
        "ARI_OFFLOAD_ARI_PASSWORD": "s3cret",
        "ARI_OFFLOAD_ARI_APP": "my-app",
        "ARI_OFFLOAD_ARI_RECONNECT_MIN_S": "0.25",
        "ARI_OFFLOAD_ARI_RECONNECT_MAX_S": "30",
    }

    assert Settings.from_env(env).ari == AriSettings(
        url="http://10.0.0.5:8088",
        username="bot",
        password="s3cret",
        app="my-app",
        reconnect_min_s=0.25,
        reconnect_max_s=30.0,
    )


def test_media_section() -> None:
    env = {
        "ARI_OFFLOAD_MEDIA_RTP_HOST": "192.0.2.1",
        "ARI_OFFLOAD_MEDIA_CODEC": "alaw",
        "ARI_OFFLOAD_MEDIA_JITTER_FRAMES": "6",
    }

    assert Settings.from_env(env).media == MediaSettings("192.0.2.1", "alaw", 6)


def test_speech_section() -> None:
    env = {
        "ARI_OFFLOAD_SPEECH_WHISPER_MODEL_DIR": "/models/whisper",
        "ARI_OFFLOAD_SPEECH_PIPER_VOICE": "/models/voice.onnx",
        "ARI_OFFLOAD_SPEECH_STT_THREADS": "4",
        "ARI_OFFLOAD_SPEECH_STT_LANGUAGE": "de",
        "ARI_OFFLOAD_SPEECH_VAD_AGGRESSIVENESS": "3",
        "ARI_OFFLOAD_SPEECH_MIN_SPEECH_MS": "100",
        "ARI_OFFLOAD_SPEECH_ENDPOINT_SILENCE_MS": "400",
        "ARI_OFFLOAD_SPEECH_BARGE_IN_MIN_SPEECH_MS": "250",
    }

    assert Settings.from_env(env).speech == SpeechSettings(
        whisper_model_dir=Path("/models/whisper"),
        piper_voice=Path("/models/voice.onnx"),
        stt_threads=4,
        stt_language="de",
        vad_aggressiveness=3,
        min_speech_ms=100,
        endpoint_silence_ms=400,
        barge_in_min_speech_ms=250,
    )


def test_agent_section() -> None:
    env = {
        "ARI_OFFLOAD_AGENT_WEBHOOK_TIMEOUT_S": "2.5",
        "ARI_OFFLOAD_AGENT_WEBHOOK_STREAM_TIMEOUT_S": "12",
        "ARI_OFFLOAD_AGENT_FALLBACK_TEXT": "One moment, please.",
    }

    assert Settings.from_env(env).agent == AgentSettings(
        webhook_timeout_s=2.5, webhook_stream_timeout_s=12.0, fallback_text="One moment, please."
    )


def test_api_section() -> None:
    env = {
        "ARI_OFFLOAD_API_HOST": "0.0.0.0",
        "ARI_OFFLOAD_API_PORT": "9000",
        "ARI_OFFLOAD_API_SIGNUP_ENABLED": "false",
    }

    assert Settings.from_env(env).api == ApiSettings("0.0.0.0", 9000, signup_enabled=False)


def test_store_section() -> None:
    env = {
        "ARI_OFFLOAD_STORE_DATA_DIR": "/var/lib/ari-offload",
        "ARI_OFFLOAD_STORE_URL": "postgresql+asyncpg://u:p@db/aoff",
    }

    assert Settings.from_env(env).store == StoreSettings(
        Path("/var/lib/ari-offload"), "postgresql+asyncpg://u:p@db/aoff"
    )


def test_sections_do_not_leak_into_each_other() -> None:
    settings = Settings.from_env({"ARI_OFFLOAD_API_HOST": "0.0.0.0"})

    assert settings.api.host == "0.0.0.0"
    assert settings.media.rtp_host == MediaSettings().rtp_host


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", "On"])
def test_bool_true_spellings(raw: str) -> None:
    env = {"ARI_OFFLOAD_API_SIGNUP_ENABLED": raw}

    assert Settings.from_env(env).api.signup_enabled is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off", "OFF"])
def test_bool_false_spellings(raw: str) -> None:
    env = {"ARI_OFFLOAD_API_SIGNUP_ENABLED": raw}

    assert Settings.from_env(env).api.signup_enabled is False


def test_empty_optional_path_means_the_bundled_default() -> None:
    env = {"ARI_OFFLOAD_SPEECH_WHISPER_MODEL_DIR": ""}

    assert Settings.from_env(env).speech.whisper_model_dir is None


def test_values_keep_their_python_types() -> None:
    settings = Settings.from_env(
        {
            "ARI_OFFLOAD_ARI_RECONNECT_MIN_S": "1",
            "ARI_OFFLOAD_API_PORT": " 8081 ",
            "ARI_OFFLOAD_STORE_DATA_DIR": "data",
        }
    )

    assert isinstance(settings.ari.reconnect_min_s, float)
    assert settings.api.port == 8081
    assert isinstance(settings.store.data_dir, Path)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("ARI_OFFLOAD_API_PORT", "http", "ARI_OFFLOAD_API_PORT='http': invalid literal"),
        ("ARI_OFFLOAD_API_PORT", "80.5", "ARI_OFFLOAD_API_PORT='80.5'"),
        ("ARI_OFFLOAD_MEDIA_JITTER_FRAMES", "", "ARI_OFFLOAD_MEDIA_JITTER_FRAMES=''"),
        ("ARI_OFFLOAD_ARI_RECONNECT_MAX_S", "ten", "ARI_OFFLOAD_ARI_RECONNECT_MAX_S='ten'"),
        ("ARI_OFFLOAD_AGENT_WEBHOOK_TIMEOUT_S", "5s", "ARI_OFFLOAD_AGENT_WEBHOOK_TIMEOUT_S='5s'"),
        (
            "ARI_OFFLOAD_API_SIGNUP_ENABLED",
            "maybe",
            "ARI_OFFLOAD_API_SIGNUP_ENABLED='maybe': expected true or false",
        ),
        ("ARI_OFFLOAD_MEDIA_CODEC", "opus", "ARI_OFFLOAD_MEDIA_CODEC='opus': expected one of ulaw"),
        ("ARI_OFFLOAD_MEDIA_CODEC", "ULAW", "ARI_OFFLOAD_MEDIA_CODEC='ULAW'"),
        ("ARI_OFFLOAD_STORE_DATA_DIR", "", "ARI_OFFLOAD_STORE_DATA_DIR='': expected a path"),
    ],
)
def test_bad_values_raise_config_error_naming_the_variable(
    name: str, raw: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: raw})

    assert str(info.value).startswith(message)
    assert info.value.__cause__ is None  # no chained traceback noise for a settings typo


# --- secrets ----------------------------------------------------------------------------------


def test_password_is_never_in_repr() -> None:
    settings = Settings.from_env(
        {
            "ARI_OFFLOAD_ARI_PASSWORD": "hunter2-ari",
            "ARI_OFFLOAD_STORE_URL": "postgresql://u:hunter2-db@db/x",
        }
    )

    assert settings.ari.password == "hunter2-ari"
    for text in (repr(settings), str(settings), repr(settings.ari), repr(settings.store)):
        assert "hunter2" not in text
    assert "username='ari-offload'" in repr(settings.ari)  # the rest is still shown


def test_a_bad_value_error_does_not_show_other_secrets() -> None:
    env = {"ARI_OFFLOAD_ARI_PASSWORD": "hunter2", "ARI_OFFLOAD_API_PORT": "x"}

    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)

    assert "hunter2" not in str(info.value)


# --- start-time checks ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "", "192.0.2.10", "::", "pbx.example.com"])
def test_open_signup_on_a_public_bind_refuses_to_start(host: str) -> None:
    with pytest.raises(ConfigError, match="ARI_OFFLOAD_API_SIGNUP_ENABLED=false") as err:
        check_api_settings(ApiSettings(host=host))

    assert "ARI_OFFLOAD_API_SIGNUP_FORCE=true" in str(err.value)


@pytest.mark.parametrize(
    "api",
    [
        ApiSettings(host="127.0.0.1"),
        ApiSettings(host="::1"),
        ApiSettings(host="localhost"),
        ApiSettings(host="0.0.0.0", signup_enabled=False),
        ApiSettings(host="0.0.0.0", signup_force=True),
    ],
)
def test_loopback_closed_or_forced_signup_starts(api: ApiSettings) -> None:
    check_api_settings(api)


def test_signup_force_and_limits_from_the_environment() -> None:
    env = {
        "ARI_OFFLOAD_API_SIGNUP_FORCE": "true",
        "ARI_OFFLOAD_API_LOGIN_FAILURES_PER_IP": "7",
        "ARI_OFFLOAD_API_LOGIN_WINDOW_S": "30",
        "ARI_OFFLOAD_STORE_RETENTION_DAYS": "0",
    }
    settings = Settings.from_env(env)

    assert settings.api.signup_force is True
    assert settings.api.login_failures_per_ip == 7
    assert settings.api.login_window_s == 30.0
    assert settings.store.retention_days == 0


async def test_app_start_refuses_open_signup_on_a_public_bind(tmp_path: Path) -> None:
    from ari_offload.app import App  # imported here: it pulls in the speech stack

    settings = Settings(
        api=ApiSettings(host="0.0.0.0", port=0), store=StoreSettings(data_dir=tmp_path / "d")
    )
    with pytest.raises(ConfigError, match="ARI_OFFLOAD_API_SIGNUP_FORCE"):
        await App.start(settings)
    assert not (tmp_path / "d").exists()  # refused before the store (or anything) opened
