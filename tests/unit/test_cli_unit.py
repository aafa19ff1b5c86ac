"""The unit half of tests/integration/test_cli.py: the tests that need no server and no app."""

from __future__ import annotations

from pathlib import Path

import pytest

from costtop.cli import main
from costtop.config import load_settings


def test_the_lateness_settings_and_the_old_overlap_setting_are_said_in_one_line(tmp_path: Path) -> None:
    from costtop.config import ConfigError, load_settings
    for body, said in (("overlap_seconds = 5\n", "settings: overlap_seconds is replaced by max_lateness"),
                       ("max_lateness = 1\n", "max_lateness: Input should be greater than or equal to 5"),
                       ("clock_skew = -1\n", "clock_skew: Input should be greater than or equal to 0")):
        path = tmp_path / "c.toml"
        path.write_text(body)
        with pytest.raises(ConfigError) as caught:
            load_settings(config_path=path, env={})
        assert str(caught.value).startswith(said) and "\n" not in str(caught.value)
    path.write_text("max_lateness = 600\nclock_skew = 30\n")
    settings = load_settings(config_path=path, env={})
    assert (settings.max_lateness, settings.clock_skew) == (600, 30)


def test_settings_precedence_cli_over_env_over_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('redis_url = "redis://file:1/0"\ndatabase_url = "postgresql://file/x"\nrefresh = 5\n'
                      '[keys]\nkill = "stop"\n[tables]\ncalls = "llm_calls"\n')
    env = {"COSTTOP_REDIS_URL": "redis://env:2/0", "COSTTOP_REFRESH": "3"}
    settings = load_settings({"redis_url": "redis://cli:3/0"}, env=env, config_path=config)
    assert settings.redis_url == "redis://cli:3/0"
    assert settings.refresh == 3.0
    assert settings.database_url == "postgresql://file/x"
    assert settings.keys.kill == "stop" and settings.tables.calls == "llm_calls"
    env_config = load_settings({}, env={"COSTTOP_CONFIG": str(config), "COSTTOP_READ_ONLY": "yes"})
    assert env_config.redis_url == "redis://file:1/0" and env_config.read_only


@pytest.mark.parametrize(("setting", "said"), [
    ("timeout_seconds = 0", "costtop: timeout_seconds: Input should be greater than or equal to 0.1"),
    ("timeout_seconds = 86400", "costtop: timeout_seconds: Input should be less than or equal to 600"),
    ("timeout_seconds = nan", "costtop: timeout_seconds: Input should be a finite number"),
    ("[thresholds]\nbudget_warning = 80",
     "costtop: thresholds.budget_warning: Input should be less than or equal to 1"),
    ("[thresholds]\nerror_rate_5m = -0.1",
     "costtop: thresholds.error_rate_5m: Input should be greater than or equal to 0"),
    ("[thresholds]\nvelocity_warning = -5", "costtop: thresholds.velocity_warning: Input should be greater than 0"),
    ("[thresholds]\nvelocity_critical = 1", "costtop: thresholds: velocity_warning <= velocity_critical"),
    ("[thresholds]\nloop_calls = 0", "costtop: thresholds.loop_calls: Input should be greater than or equal to 1"),
    ("[thresholds]\nslow_p95_ms = 0", "costtop: thresholds.slow_p95_ms: Input should be greater than or equal to 1"),
    ("[thresholds]\nanomaly_min_days = 8",
     "costtop: thresholds.anomaly_min_days: Input should be less than or equal to 7"),
    ("[thresholds]\nanomaly_sigmas = 'nan'", "costtop: thresholds.anomaly_sigmas: Input should be a finite number"),
])
def test_every_bad_setting_is_one_line_naming_it(tmp_path: Path, capsys, setting: str, said: str) -> None:
    """Checked at start, before any server is tried: the snapshot never reaches a connection."""
    path = tmp_path / "c.toml"
    path.write_text(setting + "\n")
    assert main(["snapshot", "--config", str(path), "--redis-url", "redis://127.0.0.1:1/0",
                 "--database-url", "postgresql://127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(said) and err.count("\n") == 1


@pytest.mark.parametrize(("args", "said"), [
    (("--database-url", "postgresql://h:99999/x"), "costtop: database_url: bad port: Port out of range 0-65535\n"),
    (("--redis-url", "redis://h:abc/0"),
     "costtop: redis_url: bad port: Port could not be cast to integer value as 'abc'\n"),
    (("--redis-url", "redis://h/0?db=x"), "costtop: redis_url: Invalid value for 'db' in connection URL.\n"),
])
def test_a_bad_url_names_its_setting(capsys, args: tuple[str, ...], said: str) -> None:
    assert main(["snapshot", "--redis-url", "redis://127.0.0.1:1/0", "--database-url", "postgresql://127.0.0.1:1/x",
                 *args]) == 2
    assert capsys.readouterr().err == said


@pytest.mark.parametrize(("day", "said"), [
    ("2026-1-5", "must be a date like 2026-11-21 (got '2026-1-5')"),
    ("2026-02-30", "is not a real date (got '2026-02-30')"),
    ("0001-01-01", "must be between 2000-01-01 and today"),
    ("9999-12-31", "must be between 2000-01-01 and today"),
])
def test_report_day_is_checked_before_any_read(capsys, day: str, said: str) -> None:
    assert main(["report", "--day", day, "--database-url", "postgresql://127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"costtop: report: --day {said}") and err.count("\n") == 1


@pytest.mark.parametrize(("args", "said"), [
    (("demo", "--rate", "0"), "costtop: demo: --rate must be above 0"),
    (("demo", "--rate", "nan"), "costtop: demo: --rate must be above 0"),
    (("demo", "--incident-after", "-1"), "costtop: demo: --incident-after must be between 0 and 86400"),
    (("serve", "--port", "70000"), "costtop: serve: --port must be between 1 and 65535"),
])
def test_demo_and_serve_numbers_are_checked(capsys, args: tuple[str, ...], said: str) -> None:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.startswith(said) and err.count("\n") == 1


def test_a_mistyped_read_only_and_an_empty_key_prefix_are_refused(tmp_path: Path) -> None:
    """Found by review: COSTTOP_READ_ONLY=ture gave a session that writes; `kill = ""` wrote `:agent:x`."""
    from costtop.config import ConfigError, load_settings
    with pytest.raises(ConfigError, match=r"^read_only: COSTTOP_READ_ONLY must be true or false"):
        load_settings(env={"COSTTOP_READ_ONLY": "ture"})
    assert load_settings(env={"COSTTOP_READ_ONLY": "off"}).read_only is False
    for prefix in ("", "a:b", "k*", "has space"):
        path = tmp_path / "c.toml"
        path.write_text(f'[keys]\nkill = "{prefix}"\n')
        with pytest.raises(ConfigError, match=r"^keys\.kill: a key prefix is 1 to 64 characters"):
            load_settings(config_path=path, env={})


def test_every_option_of_every_command_says_what_it_does() -> None:
    import argparse

    from costtop.cli import build_parser

    def parsers(parser: argparse.ArgumentParser):  # type: ignore[no-untyped-def]
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    found = list(parsers(build_parser()))
    assert {p.prog for p in found} >= {"costtop demo", "costtop serve", "costtop snapshot", "costtop db init"}
    silent = [f"{p.prog} {'/'.join(a.option_strings)}" for p in found for a in p._actions
              if a.option_strings and not a.help]
    assert silent == []


def test_the_demo_takes_the_theme_refresh_and_read_only_it_is_given() -> None:
    from costtop.cli import build_parser, demo_settings

    args = build_parser().parse_args(["demo", "--theme", "incident", "--refresh", "2", "--read-only"])
    settings = demo_settings(args)
    assert (settings.theme, settings.refresh, settings.read_only) == ("incident", 2.0, True)
    plain = demo_settings(build_parser().parse_args(["demo"]))
    assert (plain.theme, plain.read_only) == ("costtop-dark", False)


def test_wall_parses_for_the_app_and_the_demo_and_implies_read_only(tmp_path: Path) -> None:
    from costtop.cli import _settings, build_parser, demo_settings

    config = tmp_path / "config.toml"
    config.write_text("read_only = false\n")  # the wall wins over a config that says it may write
    wall = _settings(build_parser().parse_args(["--wall", "--config", str(config)]))
    assert (wall.wall, wall.read_only) == (True, True)
    plain = _settings(build_parser().parse_args(["--config", str(config)]))
    assert (plain.wall, plain.read_only) == (False, False)
    demo = demo_settings(build_parser().parse_args(["--config", str(config), "demo", "--wall", "--theme", "wallboard"]))
    assert (demo.wall, demo.read_only, demo.theme) == (True, True, "wallboard")
    assert load_settings(env={"COSTTOP_WALL": "yes"}, config_path=config).read_only


def test_the_demo_says_where_its_servers_listen() -> None:
    from costtop.demo.run import servers_line

    line = servers_line("redis://127.0.0.1:6390/0", "postgresql://costtop@127.0.0.1:5439/costtop")
    assert "redis://127.0.0.1:6390/0" in line and "postgresql://costtop@127.0.0.1:5439/costtop" in line
    assert "costtop snapshot --redis-url redis://127.0.0.1:6390/0 --database-url postgresql://" in line
