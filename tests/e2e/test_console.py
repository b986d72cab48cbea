"""The web console in a real headless browser (Debian's chromium + chromedriver, selenium).

Two live gateways (``s3gw serve --console 127.0.0.1:<port>``), each filled the
way users fill them (boto3 over S3, pipelines with the CLI):

* auth off: repo ``labdata`` with a history (writes, an overwrite, a delete; CSV, JSON,
  text and a PNG), pipeline ``copy`` (labdata -> copy, succeeds) and pipeline ``stats``
  (copy -> stats, fails with exit code 3: a failed job);
* auth on: an admin, user ann (reader of ``annrepo``), a token user, and ``hidden``, a
  repo only the admin may read.

The browser tests skip, saying why, only when chromium or chromedriver is missing (CI
installs both).  ``S3GW_CONSOLE_SCREENSHOT=<png>`` saves the README's screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

import pytest

from tests.conftest import ServerProcess, free_port
from tests.e2e.auth_helpers import AuthCli, Creds, server_problems
from tests.e2e.pipeline_helpers import Gateway, python_spec, s3_input

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="the console's browser tests need Debian's chromium and chromium-driver "
           "(apt-get install chromium chromium-driver; .ci/run installs them)")

CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--window-size=1280,860"]
WAIT = 20.0


def png(width: int = 4, height: int = 3) -> bytes:
    """A small valid RGB PNG (so the browser really decodes the preview)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\0" + bytes([200, 40, 40]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# -- gateways ---------------------------------------------------------------------------
def _start(tmp_path_factory, name: str, auth: bool):
    root = tmp_path_factory.mktemp(name)
    data, scripts = root / "data", root / "scripts"
    data.mkdir()
    scripts.mkdir()
    port = free_port()
    srv = ServerProcess(str(data), extra_args=["--console", f"127.0.0.1:{port}"])
    # S3GW_TEST_META=postgres: auth goes in the database the server will serve
    admin = (AuthCli(str(data), env=srv.meta_env()).enable() if auth
             else Creds("anyone", "test", "test"))
    srv.start()
    gw = Gateway(srv, str(data), auth, admin, str(scripts))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:            # the console listens just after S3
        if "console on http://" in srv.log():
            break
        time.sleep(0.05)
    return gw, f"http://127.0.0.1:{port}"


def _stop(gw: Gateway) -> None:
    gw.server.stop()
    problems = server_problems(gw.server.log())
    assert not problems, "the server logged errors:\n" + "\n".join(problems)


COPY_SCRIPT = """
    import os, boto3
    s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
    for o in s3.list_objects_v2(Bucket="labdata").get("Contents", []):
        body = s3.get_object(Bucket="labdata", Key=o["Key"])["Body"].read()
        s3.put_object(Bucket="out", Key=o["Key"], Body=body)
    print("copied", flush=True)
"""
FAIL_SCRIPT = """
    import sys
    print("stats: computing... boom-5c1e", flush=True)
    sys.exit(3)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    gw, console = _start(tmp_path_factory, "console-off", auth=False)
    try:
        s3 = gw.s3
        s3.create_bucket(Bucket="master.labdata")
        v = {}
        v["first"] = s3.put_object(Bucket="master.labdata", Key="results/a.csv",
                                   Body=b"sample,value\ns1,<b>1</b>\ns2,2\n")["VersionId"]
        s3.put_object(Bucket="master.labdata", Key="results/b.json",
                      Body=b'{"samples": 2, "ok": true}', ContentType="application/json")
        s3.put_object(Bucket="master.labdata", Key="img/pixel.png", Body=png(),
                      ContentType="image/png")
        s3.put_object(Bucket="master.labdata", Key="notes.txt", Body=b"hello <world>\n")
        v["before"] = s3.put_object(Bucket="master.labdata", Key="results/c.csv",
                                    Body=b"x\n1\n")["VersionId"]
        s3.put_object(Bucket="master.labdata", Key="results/a.csv",
                      Body=b"sample,value\ns1,10\ns2,20\ns3,30\n")
        s3.delete_object(Bucket="master.labdata", Key="results/b.json")
        v["head"] = s3.put_object(Bucket="master.labdata", Key="results/d.csv",
                                  Body=b"y\n2\n")["VersionId"]
        gw.create(python_spec("copy", s3_input("labdata"), gw.script(COPY_SCRIPT)))
        copy_job, = gw.wait_jobs("copy")
        assert copy_job["state"] == "SUCCESS", gw.logs(copy_job["id"])
        gw.create(python_spec("stats", s3_input("copy"), gw.script(FAIL_SCRIPT)))
        stats_job, = gw.wait_jobs("stats")
        assert stats_job["state"] == "FAILURE"
        yield {"gw": gw, "console": console, "v": v, "copy_job": copy_job,
               "stats_job": stats_job}
    finally:
        _stop(gw)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in CHROME_ARGS:
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _by():
    from selenium.webdriver.common.by import By
    return By


def wait_for(predicate, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def texts(driver, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(_by().CSS_SELECTOR, css)]


def click_link(driver, text: str) -> None:
    """Follow a link and wait until the browser is on the new page."""
    old = driver.current_url
    driver.find_element(_by().LINK_TEXT, text).click()
    wait_for(lambda: driver.current_url != old and driver.execute_script(
        "return document.readyState") == "complete", f"the page behind {text!r}")


def http_get(url: str, cookie: str | None = None):
    req = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read(), e.headers


def check_links(driver, base: str, cookie: str | None = None) -> int:
    """Every same-origin link of the current page answers 200."""
    hrefs = {a.get_attribute("href") for a in driver.find_elements(_by().CSS_SELECTOR, "a[href]")}
    checked = 0
    for href in sorted(h for h in hrefs if h and h.startswith(base)):
        status, _, _ = http_get(href, cookie)
        assert status == 200, (driver.current_url, href, status)
        checked += 1
    return checked


# -- auth off ---------------------------------------------------------------------------
def test_pages_load_and_every_link_works(world, browser):
    base, v = world["console"], world["v"]
    browser.get(base + "/")
    assert "Repos" in browser.title
    assert {"labdata", "copy", "stats"} <= set(texts(browser, "a.repo"))
    visited = check_links(browser, base)
    click_link(browser, "labdata")
    assert "/repo/labdata" in browser.current_url
    assert "master" in texts(browser, "a.branch")
    visited += check_links(browser, base)
    click_link(browser, "master")                                   # the commit log
    rows = browser.find_elements(_by().CSS_SELECTOR, "table.log tbody tr")
    messages = [r.find_elements(_by().TAG_NAME, "td")[2].text for r in rows]
    assert messages[:3] == ["PUT /results/d.csv", "DELETE /results/b.json", "PUT /results/a.csv"]
    assert len(messages) == 8
    assert "no author" in browser.find_element(_by().CSS_SELECTOR, "p.note").text
    visited += check_links(browser, base)
    click_link(browser, v["head"][:12])                             # click through to a commit
    assert v["head"] in browser.find_element(_by().CSS_SELECTOR, "dl.facts").text
    assert texts(browser, "table.changes tbody td:nth-child(2)") == ["results/d.csv"]
    visited += check_links(browser, base)
    click_link(browser, "Browse files at this commit")
    assert texts(browser, "a.dir") == ["img/", "results/"]
    assert texts(browser, "a.file") == ["notes.txt"]
    click_link(browser, "results/")
    assert texts(browser, "a.file") == ["a.csv", "c.csv", "d.csv"]   # b.json was deleted
    sizes = texts(browser, "table.files tbody td:nth-child(2)")
    assert sizes[0] == "31 B"
    visited += check_links(browser, base)
    click_link(browser, "a.csv")                                    # CSV preview as a table
    assert texts(browser, "table.csv th") == ["sample", "value"]
    assert texts(browser, "table.csv tbody td") == ["s1", "10", "s2", "20", "s3", "30"]
    facts = browser.find_element(_by().CSS_SELECTOR, "dl.facts").text
    assert "31 B" in facts and "binary/octet-stream" in facts
    visited += check_links(browser, base)
    assert visited > 30


def test_json_and_image_previews(world, browser):
    base, v = world["console"], world["v"]
    browser.get(f"{base}/repo/labdata/files/{v['before']}?prefix=results/")
    assert texts(browser, "a.file") == ["a.csv", "b.json", "c.csv"]  # b.json still there
    click_link(browser, "b.json")
    pre = browser.find_element(_by().CSS_SELECTOR, "pre.preview").text
    assert json.loads(pre) == {"samples": 2, "ok": True} and '\n  "samples"' in pre
    browser.get(f"{base}/repo/labdata/file/master?path=img/pixel.png")
    img = browser.find_element(_by().CSS_SELECTOR, "img.preview")
    assert wait_for(lambda: browser.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", img), "the image") == 4
    browser.get(f"{base}/repo/labdata/file/master?path=notes.txt")
    assert browser.find_element(_by().CSS_SELECTOR, "pre.preview").text == "hello <world>"
    # downloads are attachments, never rendered by the browser as a page
    href = browser.find_element(_by().LINK_TEXT, "Download").get_attribute("href")
    status, body, headers = http_get(href)
    assert status == 200 and body == b"hello <world>\n"
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith('attachment; filename="notes.txt"')
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_diff_between_two_commits(world, browser):
    base, v = world["console"], world["v"]
    browser.get(f"{base}/repo/labdata/diff")
    browser.find_element(_by().NAME, "from").send_keys(v["before"])
    browser.find_element(_by().NAME, "to").send_keys(v["head"])
    browser.find_element(_by().CSS_SELECTOR, "form.diffform button").click()
    wait_for(lambda: browser.find_elements(_by().CSS_SELECTOR, "table.diff tbody tr"), "diff")
    rows = [[td.text for td in tr.find_elements(_by().TAG_NAME, "td")]
            for tr in browser.find_elements(_by().CSS_SELECTOR, "table.diff tbody tr")]
    assert rows == [["changed", "results/a.csv", "30 B", "31 B"],
                    ["deleted", "results/b.json", "26 B", "-"],
                    ["added", "results/d.csv", "-", "4 B"]]
    summary = browser.find_element(_by().CSS_SELECTOR, "p.summary").text
    assert v["before"][:12] in summary and v["head"][:12] in summary
    assert "1 added, 1 changed, 1 deleted" in summary
    # and from a commit page: its diff with its parent
    browser.get(f"{base}/repo/labdata/commit/{v['head']}")
    click_link(browser, "Diff with parent")
    assert texts(browser, "table.diff tbody td:nth-child(2)") == ["results/d.csv"]


def test_provenance_dag_and_job_pages(world, browser):
    base, v, copy_job, stats_job = (world["console"], world["v"], world["copy_job"],
                                    world["stats_job"])
    # the output commit names the input commit it came from; the link leads there
    browser.get(f"{base}/repo/copy/commit/{copy_job['output_commit']}")
    prov = browser.find_element(_by().CSS_SELECTOR, "table.provenance")
    cells = [td.text for td in prov.find_elements(_by().TAG_NAME, "td")]
    assert cells == ["labdata", "labdata", "master", v["head"][:12]]
    assert copy_job["id"][:12] in browser.find_element(_by().TAG_NAME, "main").text
    click_link(browser, v["head"][:12])
    assert browser.current_url.endswith(f"/repo/labdata/commit/{v['head']}")
    # the commit log marks the output commit with its job
    browser.get(f"{base}/repo/copy/log/master")
    click_link(browser, f"job {copy_job['id'][:12]}")
    assert copy_job["id"] in browser.find_element(_by().CSS_SELECTOR, "dl.facts").text
    # the DAG: labdata -> copy -> copy repo -> stats -> stats repo, stats failed
    browser.get(f"{base}/dag")
    svg = browser.find_element(_by().CSS_SELECTOR, "svg.dag")
    nodes = {e.get_attribute("data-node"): e.get_attribute("class")
             for e in svg.find_elements(_by().CSS_SELECTOR, "a.node")}
    assert set(nodes) == {"repo:labdata", "pipeline:copy", "repo:copy", "pipeline:stats",
                          "repo:stats"}
    assert "state-success" in nodes["pipeline:copy"]
    assert "state-failure" in nodes["pipeline:stats"]
    edges = {(e.get_attribute("data-from"), e.get_attribute("data-to"))
             for e in svg.find_elements(_by().CSS_SELECTOR, "path.edge")}
    assert edges == {("repo:labdata", "pipeline:copy"), ("pipeline:copy", "repo:copy"),
                     ("repo:copy", "pipeline:stats"), ("pipeline:stats", "repo:stats")}
    check_links(browser, base)
    # the failed job: its state, reason, inputs and log
    browser.get(f"{base}/jobs")
    states = dict(zip(texts(browser, "table.jobs td:nth-child(2)"),
                      texts(browser, "table.jobs td:nth-child(3)")))
    assert states == {"copy": "SUCCESS", "stats": "FAILURE"}
    click_link(browser, stats_job["id"][:12])
    facts = browser.find_element(_by().CSS_SELECTOR, "dl.facts").text
    assert "FAILURE" in facts and "exit code 3" in facts and "Duration" in facts
    assert "boom-5c1e" in browser.find_element(_by().CSS_SELECTOR, "pre.log").text
    inputs = texts(browser, "table.inputs td")
    assert inputs[:4] == ["copy", "copy", "master", copy_job["output_commit"][:12]]
    check_links(browser, base)
    if os.environ.get("S3GW_CONSOLE_SCREENSHOT"):
        browser.set_window_size(1100, 540)
        browser.get(f"{base}/dag")
        browser.save_screenshot(os.environ["S3GW_CONSOLE_SCREENSHOT"])
        browser.set_window_size(1280, 860)


def test_new_commits_and_job_states_appear_without_a_reload(world, browser):
    gw, base = world["gw"], world["console"]
    gw.s3.create_bucket(Bucket="master.live")
    gw.s3.put_object(Bucket="master.live", Key="one.txt", Body=b"1")
    browser.get(f"{base}/repo/live/log/master")
    browser.execute_script("window.__noReload = 'still-here';")
    time.sleep(2.5)                      # let the page take its first version token
    gw.s3.put_object(Bucket="master.live", Key="two.txt", Body=b"2")
    wait_for(lambda: "PUT /two.txt" in browser.find_element(_by().TAG_NAME, "main").text,
             "the new commit on the open log page")
    assert browser.execute_script("return window.__noReload") == "still-here"
    # a new input commit starts a copy job: the jobs page shows it, then its end state
    browser.get(f"{base}/jobs?pipeline=copy")
    browser.execute_script("window.__noReload = 'jobs';")
    time.sleep(2.5)
    gw.s3.put_object(Bucket="master.labdata", Key="results/e.csv", Body=b"z\n3\n")
    wait_for(lambda: len(browser.find_elements(_by().CSS_SELECTOR, "table.jobs tbody tr")) == 2,
             "the new job on the open jobs page", timeout=60)
    wait_for(lambda: texts(browser, "table.jobs tbody tr:first-child td:nth-child(3)")
             == ["SUCCESS"], "the new job's final state", timeout=90)
    assert browser.execute_script("return window.__noReload") == "jobs"


def test_console_is_read_only_and_escapes_names(world):
    base = world["console"]
    req = urllib.request.Request(base + "/repo/labdata", method="POST", data=b"x=1")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    e.value.close()
    assert e.value.code == 405
    status, body, headers = http_get(base + "/repo/labdata/log/master")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert http_get(base + "/repo/nosuch")[0] == 404
    assert http_get(base + "/repo/labdata/file/master?path=../../etc/passwd")[0] == 404
    world["gw"].s3.put_object(Bucket="master.labdata", Key='x/<img src=x onerror="1">.txt',
                              Body=b"<script>alert(1)</script>")
    status, body, _ = http_get(base + "/repo/labdata/files/master?prefix=x/")
    assert status == 200 and b"<img src=x" not in body and b"&lt;img src=x" in body
    status, body, _ = http_get(base + "/repo/labdata/file/master?path=" + urllib.parse.quote(
        'x/<img src=x onerror="1">.txt'))
    assert b"<script>alert" not in body and b"&lt;script&gt;alert(1)" in body


# -- auth on ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    gw, console = _start(tmp_path_factory, "console-on", auth=True)
    try:
        cli = AuthCli(gw.data)
        ann = cli.key_create("ann")
        tok = cli.key_create("tina", token=True)
        admin = gw.s3
        admin.create_bucket(Bucket="master.annrepo")
        admin.put_object(Bucket="master.annrepo", Key="mine.txt", Body=b"ann's")
        admin.create_bucket(Bucket="master.hidden")
        admin.put_object(Bucket="master.hidden", Key="secret.txt", Body=b"top secret")
        cli.grant("ann", "annrepo", "reader")
        cli.grant("tina", "annrepo", "reader")
        yield {"gw": gw, "console": console, "ann": ann, "tina": tok, "admin": gw.creds}
    finally:
        _stop(gw)


def _sign_in(browser, base: str, access_key: str, secret: str) -> None:
    browser.delete_all_cookies()
    browser.get(base + "/login")
    browser.find_element(_by().ID, "access_key").send_keys(access_key)
    if secret:
        browser.find_element(_by().ID, "secret_key").send_keys(secret)
    browser.find_element(_by().ID, "signin").click()
    wait_for(lambda: browser.find_elements(_by().CSS_SELECTOR, "form.who, p.error"),
             "the answer to the sign-in")


def test_auth_on_login_hides_other_users_repos(secured, browser):
    base, ann = secured["console"], secured["ann"]
    browser.delete_all_cookies()
    browser.get(base + "/")
    assert browser.current_url == base + "/login"          # nothing without a session
    assert http_get(base + "/repo/annrepo")[0] == 200 and \
        b"Sign in" in http_get(base + "/repo/annrepo")[1]  # (redirected to the form)
    assert http_get(base + "/api/version")[0] == 401
    _sign_in(browser, base, ann.access_key, "wrong-secret")
    assert "Unknown key or wrong secret" in browser.find_element(_by().CSS_SELECTOR, "p.error").text
    _sign_in(browser, base, ann.access_key, ann.secret_key)
    assert browser.current_url == base + "/"
    assert texts(browser, "a.repo") == ["annrepo"]          # not "hidden"
    assert "ann" in browser.find_element(_by().CSS_SELECTOR, "form.who").text
    cookie = browser.get_cookie("s3gw_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    session = f"s3gw_console={cookie['value']}"
    # the secret is nowhere: not in the URL, not in the page, not in the cookie
    assert ann.secret_key not in browser.current_url
    assert ann.secret_key not in browser.page_source and ann.secret_key not in cookie["value"]
    assert check_links(browser, base, session) > 3
    click_link(browser, "annrepo")
    click_link(browser, "master")
    assert texts(browser, "table.log tbody td:nth-child(3)") == ["PUT /mine.txt"]
    for path in ("/repo/hidden", "/repo/hidden/log/master",
                 "/repo/hidden/file/master?path=secret.txt",
                 "/repo/hidden/raw/master?path=secret.txt&download=1"):
        status, body, _ = http_get(base + path, session)
        assert status == 404 and b"top secret" not in body, path
    assert b"hidden" not in http_get(base + "/dag", session)[1]
    # sign out ends the session on the server too
    browser.find_element(_by().CSS_SELECTOR, "form.who button").click()
    wait_for(lambda: browser.current_url == base + "/login", "the sign-in page")
    assert http_get(base + "/api/version", session)[0] == 401
    log = secured["gw"].server.log()
    assert ann.secret_key not in log and "wrong-secret" not in log


def test_auth_on_token_and_admin(secured, browser):
    base = secured["console"]
    _sign_in(browser, base, secured["tina"].access_key, "")        # a token alone
    assert texts(browser, "a.repo") == ["annrepo"]
    admin = secured["admin"]
    _sign_in(browser, base, admin.access_key, admin.secret_key)
    assert texts(browser, "a.repo") == ["annrepo", "hidden"]
    browser.get(base + "/repo/hidden/file/master?path=secret.txt")
    assert browser.find_element(_by().CSS_SELECTOR, "pre.preview").text == "top secret"
    # revoking a key ends its sessions (within the auth store's 50 ms recheck)
    _sign_in(browser, base, secured["tina"].access_key, "")
    session = f"s3gw_console={browser.get_cookie('s3gw_console')['value']}"
    assert http_get(base + "/api/version", session)[0] == 200
    AuthCli(secured["gw"].data).key_revoke(secured["tina"].access_key)
    wait_for(lambda: http_get(base + "/api/version", session)[0] == 401, "the session to end")
    _sign_in(browser, base, secured["tina"].access_key, "")
    assert browser.find_elements(_by().CSS_SELECTOR, "p.error")
