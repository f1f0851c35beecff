"""Secret redaction before storage: every kind is caught, ordinary text is left alone.

The keys below are made up with the right shape for each vendor. Each is written as
prefix + body so that secret scanners do not flag this file.
"""

from __future__ import annotations

import pytest

from reme_mcp.privacy.redact import Redaction, redact, redact_value

OPENAI_LEGACY = "sk-" + "u8jzPde0IgxLd6GncfBAT3BlbkFJepfJBd0Kh8oOOL8dKLzd"
OPENAI_PROJECT = "sk-" + "proj-CfrL1spNxnyVmihA_2O76UMFxFkM_R5Kjp1vRt-1T3BlbkFJfjORS_6ilI8ihN5KXSc7Tvo_"
OPENAI_SERVICE = "sk-" + "svcacct-hBKqFYY_kv5ZJr3J1TWDtkwtDDb-xHKas1VOqg6YYZYn9Zhy"
ANTHROPIC = (
    "sk-" + "ant-api03-iA4uoRgnatmUdjAWtGSU8po-799NksnRH9ucAUsdMlHUvTCQCyEZDz_TddJ8HyS5SUkCnD8zRA9a9SkpXz9w3QlY7ZkuvAA"
)
AWS_KEY_ID = "AKIA" + "IBJ3J4WJ99IBAG7I"
AWS_SESSION_KEY_ID = "ASIA" + "1MNBQNS6PUQ80IDW"
AWS_SECRET = "61qtc4xatws8phP9nhFyJfm5di4PzJ59FHz5r1pY"
GITHUB_PAT_CLASSIC = "ghp_" + "CueQpBenQtYh5Xj8TPQxjq4i9DoV8gz4FkQ1"
GITHUB_OAUTH = "gho_" + "okTBGzvAmwufUxbvJDCTbyvHNsG9eh6Yo4gf"
GITHUB_APP = "ghs_" + "qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er"
GITHUB_PAT_FINE = "github_pat_" + "8bOfZqfM2oeq3hDavJA76r_NicHTp8hkqdlm7tOtHWnsCGRlrwZbqcabUGJmGEp7CgQ0PBQFI14zGtSnov"
GITLAB = "glpat-" + "zrZSgqbjG3uhkWKFLf6x"
SLACK_BOT = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE_LIVE = "sk_live_" + "krCaqx9vJupc94tnwlavyfEr"
STRIPE_RESTRICTED = "rk_live_" + "GPmpGXafq0fjzLczbttOofL9"
STRIPE_TEST = "sk_test_" + "H2WjQ5TY4MyWuUFjsUNPjc01"
GOOGLE = "AIza" + "2rcDkdfrUnW5gcF-Ha6ili8GjHEAD6_Wj9K"
HUGGINGFACE = "hf_" + "XcNOPmeMjvqPVStNKiaEdFrRgSnRFsTHsD"
JWT = (
    "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUgRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
OPAQUE_TOKEN = "DDXh5Jmtf7EbsDe0G9Cryn687neLfjVH"
PEM = (
    "-----BEGIN " + "RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)
OPENSSH = (
    "-----BEGIN " + "OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
MEMORY_ID = "3f2a9c0d1e4b5a6f"

# (kind, text, the secret inside it): redacting gives text with just that secret replaced
SECRETS = [
    ("openai_key", f"export OPENAI_API_KEY={OPENAI_LEGACY}\n", OPENAI_LEGACY),
    ("openai_key", f"client = OpenAI(api_key='{OPENAI_PROJECT}')", OPENAI_PROJECT),
    ("openai_key", f"the service account key {OPENAI_SERVICE} expired", OPENAI_SERVICE),
    ("anthropic_key", f"ANTHROPIC_API_KEY={ANTHROPIC}", ANTHROPIC),
    ("aws_access_key_id", f"aws_access_key_id = {AWS_KEY_ID}", AWS_KEY_ID),
    ("aws_access_key_id", f'{{"AccessKeyId": "{AWS_SESSION_KEY_ID}", "Expiration": "2024-05-01"}}', AWS_SESSION_KEY_ID),
    ("aws_secret_key", f"[default]\naws_secret_access_key = {AWS_SECRET}\n", AWS_SECRET),
    ("aws_secret_key", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET} make deploy", AWS_SECRET),
    ("aws_secret_key", f"secret_access_key: {AWS_SECRET}", AWS_SECRET),
    ("aws_secret_key", f'{{"SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET),
    ("github_token", f"git clone with GH_TOKEN={GITHUB_PAT_CLASSIC} failed", GITHUB_PAT_CLASSIC),
    ("github_token", f"oauth token {GITHUB_OAUTH} for the CLI", GITHUB_OAUTH),
    ("github_token", f"the app installation token was {GITHUB_APP}.", GITHUB_APP),
    ("github_token", f"fine-grained: {GITHUB_PAT_FINE}", GITHUB_PAT_FINE),
    ("gitlab_token", f"curl --header 'PRIVATE-TOKEN: {GITLAB}' https://gitlab.example.com/api/v4/projects", GITLAB),
    ("slack_token", f"SLACK_BOT_TOKEN={SLACK_BOT}", SLACK_BOT),
    ("stripe_key", f"stripe.api_key = '{STRIPE_LIVE}'", STRIPE_LIVE),
    ("stripe_key", f"restricted key {STRIPE_RESTRICTED} for the reporting job", STRIPE_RESTRICTED),
    ("stripe_key", f"tests use {STRIPE_TEST}", STRIPE_TEST),
    ("google_api_key", f"https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key={GOOGLE}", GOOGLE),
    ("huggingface_token", f"huggingface-cli login --token {HUGGINGFACE}", HUGGINGFACE),
    ("jwt", f"session cookie: {JWT}; Path=/", JWT),
    ("private_key", f"id_rsa was:\n{PEM}\nthen ssh worked", PEM),
    ("private_key", f"key = '''{OPENSSH}'''", OPENSSH),
    ("bearer_token", f"Authorization: Bearer {OPAQUE_TOKEN}\nAccept: application/json", OPAQUE_TOKEN),
    ("bearer_token", f"curl -H 'authorization: bearer {OPAQUE_TOKEN}' https://api.example.com", OPAQUE_TOKEN),
    ("basic_auth", "Authorization: Basic YWxpY2U6czNjcjN0LXBhc3M=", "YWxpY2U6czNjcjN0LXBhc3M="),
    ("password", "password=hunter2 user=bob", "hunter2"),
    ("password", "DB_PASSWORD='c0rrect-h0rse'\nDB_HOST=localhost", "c0rrect-h0rse"),
    ("password", '{"username": "bob", "password": "correct horse battery staple"}', "correct horse battery staple"),
    ("password", "redis:\n  passwd: s3cr3t!\n  port: 6379", "s3cr3t!"),
    ("password", "mysql_pwd=Tr0ub4dor&3", "Tr0ub4dor"),
    ("password", "spring.datasource.password = P@ssw0rd;", "P@ssw0rd"),
    ("password", "login failed (password=hunter2)", "hunter2"),
    (
        "password",
        "https://example.com/cb?state=xyz&access_token=ya29.A0ARrdaM-k9XyZ&expires_in=3599",
        "ya29.A0ARrdaM-k9XyZ",
    ),
    ("password", "client_secret: 8f9c2b7e-1d3a-4c5b-9e8f-7a6b5c4d3e2f", "8f9c2b7e-1d3a-4c5b-9e8f-7a6b5c4d3e2f"),
    ("password", 'headers = {"X-API-Key": "live-7c4e9a1b2d3f"}', "live-7c4e9a1b2d3f"),
    ("password", "apikey: abcd1234efgh5678", "abcd1234efgh5678"),
    ("password", "SECRET=mysecretvalue42 ./run.sh", "mysecretvalue42"),
    ("password", "token=tok_9f8e7d6c5b4a", "tok_9f8e7d6c5b4a"),
    ("url_credentials", "DATABASE_URL=postgres://app:s3cr3t-pw@db.internal:5432/prod", "s3cr3t-pw"),
    ("url_credentials", "broker: amqp://guest:Gu3st!x@rabbit.local//", "Gu3st!x"),
    ("url_credentials", "REDIS_URL=redis://:r3d1s-pass@cache:6379/0", "r3d1s-pass"),
]


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(SECRETS)])
def test_each_kind_is_redacted_and_nothing_else_changes(kind: str, text: str, secret: str) -> None:
    assert text.count(secret) == 1
    result = redact(text)
    assert result == Redaction(text.replace(secret, f"[REDACTED:{kind}]"), 1, (kind,))


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(SECRETS)])
def test_redacting_twice_changes_nothing_more(kind: str, text: str, secret: str) -> None:
    once = redact(text)
    twice = redact(once.text)
    assert twice == Redaction(once.text, 0, ())


def test_several_secrets_are_reported_in_text_order() -> None:
    text = (
        f"memory {MEMORY_ID}: deploy with AWS_ACCESS_KEY_ID={AWS_KEY_ID} "
        f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}, then call the API with Bearer {OPAQUE_TOKEN} "
        f"and push with {GITHUB_PAT_CLASSIC}."
    )
    result = redact(text)
    assert result.text == (
        f"memory {MEMORY_ID}: deploy with AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key_id] "
        "AWS_SECRET_ACCESS_KEY=[REDACTED:aws_secret_key], then call the API with Bearer [REDACTED:bearer_token] "
        "and push with [REDACTED:github_token]."
    )
    assert result.count == 4
    assert result.kinds == ("aws_access_key_id", "aws_secret_key", "bearer_token", "github_token")


def test_a_jwt_after_bearer_counts_once() -> None:
    result = redact(f"Authorization: Bearer {JWT}")
    assert result == Redaction("Authorization: Bearer [REDACTED:jwt]", 1, ("jwt",))


def test_a_token_inside_a_url_or_an_assignment_counts_once() -> None:
    assert redact(f"https://x-access-token:{GITHUB_APP}@github.com/org/repo.git") == Redaction(
        "https://x-access-token:[REDACTED:github_token]@github.com/org/repo.git", 1, ("github_token",)
    )
    assert redact(f'{{"access_token": "{JWT}", "token_type": "Bearer"}}') == Redaction(
        '{"access_token": "[REDACTED:jwt]", "token_type": "Bearer"}', 1, ("jwt",)
    )
    assert redact(f"OPENAI_API_KEY={OPENAI_PROJECT}").kinds == ("openai_key",)


def test_a_pem_block_counts_once_whatever_it_contains() -> None:
    block = PEM.replace("MIIEow", f"password={AWS_KEY_ID}")
    result = redact(f"before\n{block}\nafter")
    assert result == Redaction("before\n[REDACTED:private_key]\nafter", 1, ("private_key",))


def test_a_pem_block_inside_json_with_escaped_newlines() -> None:
    escaped = PEM.replace("\n", "\\n")
    text = f'{{"type": "service_account", "private_key": "{escaped}\\n", "client_email": "bot@example.iam"}}'
    result = redact(text)
    assert result.text == text.replace(escaped, "[REDACTED:private_key]")
    assert result.kinds == ("private_key",)


def test_a_truncated_pem_block_is_redacted_to_the_end() -> None:
    text = "pasted half the key:\n" + PEM.split("-----END")[0]
    assert redact(text) == Redaction("pasted half the key:\n[REDACTED:private_key]", 1, ("private_key",))


def test_public_keys_and_certificates_are_not_secrets() -> None:
    text = (
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1L\n-----END PUBLIC KEY-----\n"
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----\n"
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop"
    )
    assert redact(text) == Redaction(text, 0, ())


@pytest.mark.parametrize(
    "text",
    [
        "password=",
        "password: ********",
        "password=<password>",
        'password: "<your password here>"',
        "password=${DB_PASSWORD}",
        "api_key=$OPENAI_API_KEY",
        "token: {{ secrets.GITHUB_TOKEN }}",
        "PASSWORD=xxx",
        "password: changeme",
        "secret: null",
        "password = None",
        "api_key: your_api_key_here",
        "postgres://user:password@localhost:5432/app",
        "postgres://app:${PGPASSWORD}@db:5432/app",
        "def login(username: str, password: str) -> bool:",
        "token: Optional[str] = None",
        "api_key = os.environ['OPENAI_API_KEY']",
        "token = get_token()",
        "password=self.password",
        "PWD=/home/alice/project\nOLDPWD=/home/alice",
        "cursor.execute('SELECT 1 WHERE password = %s', (pw,))",
        "the token count was 2000",
        "token: 512",
        f"resume_token={MEMORY_ID}",
        "secret: yes",
        "Bearer tokens expire after an hour",
    ],
)
def test_placeholders_and_code_are_not_secrets(text: str) -> None:
    assert redact(text) == Redaction(text, 0, ())


NOT_SECRETS = [
    # hashes, ids, SHAs
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "sha1 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
    "md5 of the file is d41d8cd98f00b204e9800998ecf8427e",
    "fixed in commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    "see a1b2c3d and 7e9f0aa on main",
    f"recalled memory {MEMORY_ID} and 0123456789abcdef",
    "content id 3f2a9c0d1e4b5a6f",
    "request id 550e8400-e29b-41d4-a716-446655440000",
    "trace 6ba7b810-9dad-11d1-80b4-00c04fd430c8 span 00f067aa0ba902b7",
    "![dot](data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==)",
    "the blob was SGVsbG8sIFdvcmxkISBUaGlzIGlzIGp1c3QgcHJvc2Uu encoded",
    # words that start like prefixes
    "the skeleton screen loads first",
    "we use sk-learn (scikit-learn) for the baseline",
    "task-2024-05-01-migrate-the-database-schema",
    "pip install scikit-learn==1.4.2 sklearn-pandas",
    "the ghp_ prefix marks a GitHub classic token",
    "xoxb- is the Slack bot token prefix",
    "Bearer of bad news",
    "An eyJ prefix means base64 JSON, like eyJhbGciOiJIUzI1NiJ9 alone",
    "hf_hub_download(repo_id='sentence-transformers/all-MiniLM-L6-v2')",
    # dates, versions, numbers
    "released on 2024-05-01T12:30:00Z",
    "upgrade from v1.2.3 to 2.0.0-rc.1+build.5",
    "call +1 (555) 123-4567 or 020 7946 0958",
    "python 3.11.9, numpy 1.26.4, torch 2.3.0",
    # ordinary prose about secrets
    "password reset email sent",
    "the token count was 2000",
    '{"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}',
    "tokens: 512",
    "max_tokens=512 temperature=0.2",
    "token_type=bearer expires_in=3600",
    "the client_secret is stored in vault, never in the repo",
    "Authorization header missing",
    "rotate your API keys every 90 days",
    # cloud resources
    "arn:aws:iam::123456789012:role/deploy-role",
    "arn:aws:s3:::my-bucket/logs/2024/05/01/app.log",
    "region us-east-1, failover to eu-west-2",
    "AROAEXAMPLEROLEID12345 is a role id",
    "bucket s3://my-bucket/path/to/object.json",
    # packages, paths, urls
    "npm install @types/node eslint-config-airbnb lodash.debounce",
    "/home/alice/.ssh/config and C:\\Users\\bob\\AppData\\Local",
    "./scripts/setup.sh --skip-tests",
    "git@github.com:org/repo.git",
    "https://github.com/org/repo/blob/main/README.md#install",
    "http://localhost:8080/api/v1/items?page=2&limit=50",
    "ssh://git@gitlab.example.com:2222/team/project.git",
    "email alice@example.com about user:bob",
]


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == Redaction(text, 0, ())


def test_the_no_false_positive_corpus_is_big_enough() -> None:
    assert len(NOT_SECRETS) >= 40


def test_redact_value_walks_nested_metadata() -> None:
    metadata = {
        "source": "shell",
        "password": "not-a-secret-by-key",  # dict keys never matter: only values are scanned
        "env": {"OPENAI_API_KEY": OPENAI_LEGACY, "HOME": "/home/alice"},
        "commands": [f"git push https://bob:{GITHUB_PAT_CLASSIC}@github.com/org/repo", "ls -la"],
        "pair": ("password=hunter2", 3),
        "id": MEMORY_ID,
        "score": 0.87,
        "ok": True,
        "none": None,
    }
    value, count = redact_value(metadata)
    assert count == 3
    assert value == {
        "source": "shell",
        "password": "not-a-secret-by-key",
        "env": {"OPENAI_API_KEY": "[REDACTED:openai_key]", "HOME": "/home/alice"},
        "commands": ["git push https://bob:[REDACTED:github_token]@github.com/org/repo", "ls -la"],
        "pair": ("password=[REDACTED:password]", 3),
        "id": MEMORY_ID,
        "score": 0.87,
        "ok": True,
        "none": None,
    }
    assert metadata["env"]["OPENAI_API_KEY"] == OPENAI_LEGACY  # the input is not modified
    assert redact_value(value) == (value, 0)


def test_redact_value_passes_extra_patterns_down() -> None:
    assert redact_value({"notes": ["badge EMP-00417"]}, [r"EMP-\d{5}"]) == ({"notes": ["badge [REDACTED:custom]"]}, 1)


def test_extra_patterns_redact_as_custom() -> None:
    result = redact(f"employee EMP-00417 used {GITHUB_OAUTH}", extra_patterns=[r"EMP-\d{5}"])
    assert result == Redaction("employee [REDACTED:custom] used [REDACTED:github_token]", 2, ("custom", "github_token"))


def test_an_extra_pattern_can_redact_only_its_secret_group() -> None:
    result = redact("vault pin 4821, locker 12", extra_patterns=[r"vault pin (?P<secret>\d+)"])
    assert result == Redaction("vault pin [REDACTED:custom], locker 12", 1, ("custom",))


def test_extra_patterns_do_not_double_count_builtin_matches() -> None:
    result = redact(f"key {GITHUB_PAT_CLASSIC}", extra_patterns=[r"ghp_\w+"])
    assert result == Redaction("key [REDACTED:github_token]", 1, ("github_token",))


def test_extra_patterns_never_match_a_placeholder() -> None:
    once = redact("code EMP-00417", extra_patterns=[r"EMP-\d+", r"REDACTED"])
    assert once.text == "code [REDACTED:custom]"
    assert redact(once.text, extra_patterns=[r"EMP-\d+", r"REDACTED"]) == Redaction(once.text, 0, ())


def test_an_invalid_extra_pattern_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"extra redaction pattern '\(unclosed' is not a valid regular expression"):
        redact("anything", extra_patterns=["(unclosed"])


def test_a_runaway_extra_pattern_is_stopped() -> None:
    with pytest.raises(ValueError, match="took longer than"):
        redact("a" * 60 + "c", extra_patterns=[r"(\w|\w\w)+\d\D\d\D\d$"])


def test_empty_and_secret_free_text() -> None:
    assert redact("") == Redaction("", 0, ())
    assert redact("just a note\n\twith  odd   spacing \r\n") == Redaction(
        "just a note\n\twith  odd   spacing \r\n", 0, ()
    )
