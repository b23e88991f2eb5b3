"""Realistic synthetic inputs for a plain clone (no ``../shared/corpus``): GitHub webhooks and log lines.

Pure: every function takes a ``random.Random`` and returns plain data, so a seed gives the same data.
The shapes follow the real thing closely enough to exercise what the corpus exercises: GitHub
deliveries (``push``, ``issues``, ``pull_request``, ``ping``) with the repository/sender objects and
the commit author e-mail addresses GitHub puts in them, sent with the matching ``X-GitHub-Event``;
Apache error-log, Apache access-log and syslog (sshd, postfix) lines with client IP addresses and
e-mail addresses, the personal data the pipeline must redact. Addresses are from the ranges reserved
for documentation (RFC 5737 IPs, RFC 2606 domains), so nothing here names a real host or person.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

GITHUB_EVENTS = ("push", "issues", "pull_request", "ping")

_USERS = ("octocat", "hubot", "monalisa", "ada-l", "grace-h", "linus-t", "margaret-h", "alan-t")
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_REPOS = ("sluice-demo", "webshop", "billing-api", "infra-live", "docs-site")
_FILES = ("README.md", "src/app.py", "src/api/handlers.py", "tests/test_api.py", "Makefile", "infra/main.tf")
_SUBJECTS = ("Fix the retry loop on throttling", "Add pagination to the list endpoint", "Bump dependencies",
             "Document the webhook secrets", "Handle empty batches", "Refactor the store adapter")  # fmt: skip
_ISSUES = ("Crash when the body is empty", "Timeouts under load", "Support NDJSON uploads",
           "Docs: quick start fails on Windows", "Rate limit per tenant")  # fmt: skip
_PATHS = ("/", "/index.html", "/login", "/api/v1/orders", "/static/app.js", "/admin", "/wp-login.php")
_AGENTS = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
           "curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)")  # fmt: skip
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class GitHubDelivery:
    """A webhook body and the ``X-GitHub-Event`` GitHub sends it with."""

    event: str
    body: bytes


def ip_address(rng: random.Random) -> str:
    """An IPv4 address from the documentation ranges (RFC 5737)."""
    return f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.randint(1, 254)}"


def email_address(rng: random.Random, user: str | None = None) -> str:
    """An e-mail address at a documentation domain (RFC 2606)."""
    return f"{user or rng.choice(_USERS)}@{rng.choice(_DOMAINS)}"


def _sha(rng: random.Random) -> str:
    return hashlib.sha1(rng.randbytes(16), usedforsecurity=False).hexdigest()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _user(rng: random.Random, login: str | None = None) -> dict[str, Any]:
    login = login or rng.choice(_USERS)
    uid = rng.randint(1_000, 9_999_999)
    return {"login": login, "id": uid, "node_id": f"MDQ6VXNlcj{uid}", "type": "User", "site_admin": False,
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "html_url": f"https://github.com/{login}", "url": f"https://api.github.com/users/{login}"}  # fmt: skip


def _repository(rng: random.Random, owner: dict[str, Any]) -> dict[str, Any]:
    name = rng.choice(_REPOS)
    full = f"{owner['login']}/{name}"
    return {"id": rng.randint(10**6, 10**9), "name": name, "full_name": full, "private": rng.random() < 0.5,
            "owner": owner, "html_url": f"https://github.com/{full}", "default_branch": "main",
            "description": f"{name.replace('-', ' ')} service", "url": f"https://api.github.com/repos/{full}",
            "stargazers_count": rng.randint(0, 5000), "open_issues_count": rng.randint(0, 300)}  # fmt: skip


def _push(rng: random.Random, now: float, sender: dict[str, Any], repo: dict[str, Any]) -> dict[str, Any]:
    commits: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 4)):
        author = rng.choice(_USERS)
        person = {
            "name": author.replace("-", " ").title(),
            "email": email_address(rng, author),
            "username": author,
        }
        sha = _sha(rng)
        commits.append({"id": sha, "tree_id": _sha(rng), "distinct": True, "message": rng.choice(_SUBJECTS),
                        "timestamp": _iso(now - rng.randint(0, 3600)), "author": person, "committer": person,
                        "url": f"{repo['html_url']}/commit/{sha}", "added": [],
                        "removed": [], "modified": rng.sample(_FILES, rng.randint(1, 3))})  # fmt: skip
    before, after = _sha(rng), commits[-1]["id"]
    return {"ref": "refs/heads/main", "before": before, "after": after, "created": False, "deleted": False,
            "forced": False, "base_ref": None, "compare": f"{repo['html_url']}/compare/{before[:12]}...{after[:12]}",
            "commits": commits, "head_commit": commits[-1], "repository": repo,
            "pusher": {"name": sender["login"], "email": email_address(rng, sender["login"])},
            "sender": sender}  # fmt: skip


def _issues(rng: random.Random, now: float, sender: dict[str, Any], repo: dict[str, Any]) -> dict[str, Any]:
    number, action = rng.randint(1, 2000), rng.choice(("opened", "edited", "closed", "reopened"))
    body = (
        f"Seen from {ip_address(rng)}; reported by {email_address(rng)}. Steps: post an empty batch, retry."
    )
    issue = {"number": number, "title": rng.choice(_ISSUES), "state": "closed" if action == "closed" else "open",
             "user": sender, "body": body,
             "labels": [{"name": rng.choice(("bug", "enhancement", "docs"))}], "comments": rng.randint(0, 12),
             "created_at": _iso(now), "updated_at": _iso(now), "html_url": f"{repo['html_url']}/issues/{number}"}  # fmt: skip
    return {"action": action, "issue": issue,
            "repository": repo, "sender": sender}  # fmt: skip


def _pull_request(
    rng: random.Random, now: float, sender: dict[str, Any], repo: dict[str, Any]
) -> dict[str, Any]:
    number, action = rng.randint(1, 2000), rng.choice(("opened", "synchronize", "closed"))
    pull = {"number": number, "title": rng.choice(_SUBJECTS), "state": "closed" if action == "closed" else "open",
            "user": sender, "draft": False,
            "body": f"Closes #{rng.randint(1, 2000)}. cc {email_address(rng)}", "merged": False,
            "head": {"ref": f"fix/{number}", "sha": _sha(rng)}, "base": {"ref": "main", "sha": _sha(rng)},
            "additions": rng.randint(1, 400), "deletions": rng.randint(0, 200), "changed_files": rng.randint(1, 9),
            "created_at": _iso(now), "html_url": f"{repo['html_url']}/pull/{number}"}  # fmt: skip
    return {"action": action, "number": number, "pull_request": pull,
            "repository": repo, "sender": sender}  # fmt: skip


def _ping(rng: random.Random, now: float, sender: dict[str, Any], repo: dict[str, Any]) -> dict[str, Any]:
    hook_id = rng.randint(10**7, 10**9)
    return {"zen": rng.choice(("Design for failure.", "Keep it logically awesome.", "Practicality beats purity.")),
            "hook_id": hook_id, "hook": {"type": "Repository", "id": hook_id, "name": "web", "active": True,
                                         "events": ["push", "issues", "pull_request"],
                                         "config": {"content_type": "json", "insecure_ssl": "0",
                                                    "url": "https://hooks.example.com/github"},
                                         "created_at": _iso(now)},
            "repository": repo, "sender": sender}  # fmt: skip


_BUILDERS: dict[str, Callable[[random.Random, float, dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "push": _push,
    "issues": _issues,
    "pull_request": _pull_request,
    "ping": _ping,
}


def github_delivery(rng: random.Random, event: str | None = None, now: float | None = None) -> GitHubDelivery:
    """A GitHub webhook delivery of ``event`` (one of ``GITHUB_EVENTS``; random when None)."""
    event = event or rng.choice(GITHUB_EVENTS)
    now = time.time() if now is None else now
    sender = _user(rng)
    repo = _repository(rng, _user(rng))
    return GitHubDelivery(event, orjson.dumps(_BUILDERS[event](rng, now, sender, repo)))


def apache_error_line(rng: random.Random, now: float) -> str:
    """An Apache error-log line, as in the Loghub Apache sample: ``[date] [level] message``."""
    t = time.gmtime(now)
    stamp = f"[{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} {time.strftime('%H:%M:%S', t)} {t.tm_year}]"
    return rng.choice((
        f"{stamp} [notice] jk2_init() Found child {rng.randint(1000, 32000)} in scoreboard slot {rng.randint(1, 12)}",
        f"{stamp} [error] [client {ip_address(rng)}] Directory index forbidden by rule: /var/www/html/",
        f"{stamp} [error] [client {ip_address(rng)}] File does not exist: /var/www/html{rng.choice(_PATHS)}",
        f"{stamp} [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
        f"{stamp} [error] mod_jk child workerEnv in error state {rng.randint(1, 9)}",
        f"{stamp} [warn] [client {ip_address(rng)}] mod_security: access denied for {email_address(rng)}",
    ))  # fmt: skip


def apache_access_line(rng: random.Random, now: float) -> str:
    """An Apache combined-log line: client IP, request, status, size, referrer and user agent."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    path = rng.choice(_PATHS)
    if rng.random() < 0.2:
        path += f"?newsletter={email_address(rng).replace('@', '%40')}"
    return (f'{ip_address(rng)} - - [{stamp}] "{rng.choice(("GET", "GET", "POST"))} {path} HTTP/1.1" '
            f'{rng.choice((200, 200, 200, 301, 404, 500))} {rng.randint(200, 40000)} "-" "{rng.choice(_AGENTS)}"')  # fmt: skip


def syslog_line(rng: random.Random, now: float) -> str:
    """A syslog line from sshd or postfix, with the client IPs and recipients those daemons log."""
    t = time.gmtime(now)
    head = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {time.strftime('%H:%M:%S', t)} mail{rng.randint(1, 3)}"
    pid, user = rng.randint(100, 65000), rng.choice(_USERS)
    return rng.choice((
        f"{head} sshd[{pid}]: Accepted publickey for {user} from {ip_address(rng)} port {rng.randint(1024, 65535)} ssh2",
        f"{head} sshd[{pid}]: Failed password for invalid user admin from {ip_address(rng)} port {rng.randint(1024, 65535)} ssh2",
        f"{head} postfix/smtp[{pid}]: 3F2A1{pid:05X}: to=<{email_address(rng, user)}>, relay=mx.example.net"
        f"[{ip_address(rng)}]:25, delay=0.{rng.randint(10, 99)}, status=sent (250 2.0.0 Ok)",
        f"{head} postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ip_address(rng)}]: 554 5.7.1 "
        f"<{email_address(rng)}>: Relay access denied",
    ))  # fmt: skip


def log_lines(rng: random.Random, count: int, now: float | None = None) -> list[str]:
    """``count`` lines mixing Apache error and access logs and syslog, one second apart."""
    start = time.time() - count if now is None else now - count
    makers = (apache_error_line, apache_access_line, syslog_line)
    return [rng.choice(makers)(rng, start + i) for i in range(count)]
