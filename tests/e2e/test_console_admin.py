"""test_console_admin.py - the console's infrastructure views in a real headless Chromium (Debian's chromium and
chromium-driver, driven by python3-selenium): after some mail the dashboard draws the delivery rate, the latency and
the queue as SVG graphs with data, with the services, certificate, replication and warnings; the queue is flushed;
a held message's tracking timeline; servers and a setting changed; a connector added and deleted; DKIM keys made
with their records; a service's log; a view-only admin sees the dashboard but is refused a change. Each step saves a
screenshot under BUILD/test-output/test_console_admin/; Chromium reports no Content-Security-Policy violation."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser import Browser  # noqa: E402
from harness import System, main, setup, test  # noqa: E402

S = None
W = None


def view(name, ready, what):
    W.el("nav a[data-view=%s]" % name).click()
    W.wait(ready, what)


@setup
def system_and_browser():
    global S, W
    S = System()
    W = Browser(S, "test_console_admin")
    for login in ("ulla", "vera"):
        S.cli("user", "add", login, "--given", login.title(), "--surname", "User", "--password", "pw-" + login,
              check=True)
    S.cli("role", "add", "View-Only Admins", "vera", check=True)


@test
def dashboard_draws_the_mail_flow():
    S.hold_mail_for("dead.test")
    for i in range(4):
        S.submit("ulla", "pw-ulla", "ulla.user@example.com", "vera.user@example.com", "local %d" % i)
    S.submit("ulla", "pw-ulla", "ulla.user@example.com", "someone@dead.test", "held in the queue")
    W.sign_in("admin", S.admin_password)
    W.wait(lambda: W.visible("#dashboard") and "smtpd" in W.el("#services").text, "the dashboard")

    def drawn():
        rate, latency, queue = (W.el("#graph-" + g) for g in ("rate", "latency", "queue"))
        return (float(rate.get_attribute("data-max")) > 0 and int(rate.get_attribute("data-points")) >= 1
                and latency.get_attribute("data-points") and float(queue.get_attribute("data-max")) >= 1)
    for _ in range(40):  # the queue's length is sampled every interval (10 s)
        try:
            if drawn():
                break
        except Exception:
            pass
        time.sleep(1)
        W.driver.refresh()
    W.wait(drawn, "the graphs with data", timeout=15)
    assert W.els("#graph-rate polyline") and W.els("#graph-rate polygon"), "no line drawn"
    assert "valid until" in W.el("#cert").text, W.el("#cert").text
    assert "replica connected" in W.el("#replication").text, W.el("#replication").text
    assert W.el("#warnings").text, "no warnings line"
    assert "delivered" in W.el("#flow-totals").text
    running = [r.text for r in W.els("#services tbody tr")]
    assert all("running" in r for r in running) and len(running) >= 5, running
    W.shot("1-dashboard")


@test
def queue_flushed_and_timeline():
    view("queue", lambda: "someone@dead.test" in W.el("#queue-list").text, "the held message")
    W.shot("2-queue")
    mark = S.log_mark("mta")
    W.el("#flush").click()
    W.wait(lambda: "Flushed" in W.message(), "the flush")
    S.wait_log("mta", "queue flush requested", mark)
    W.shot("3-queue-flushed")
    view("tracking", lambda: W.visible("#track-form"), "the tracking view")
    W.fill("#track-form", q="someone@dead.test")
    W.wait(lambda: len(W.els("#timelines ol.timeline li")) >= 2, "the timeline")
    events = [li.text for li in W.els("#timelines ol.timeline li")]
    assert "received" in events[0] and any("deferred" in e for e in events), events
    assert len(W.els("#timelines h3")) == 1, W.el("#timelines").text  # one message, one timeline
    W.shot("4-tracking")


@test
def servers_connectors_dkim_logs():
    view("servers", lambda: "smtp.max_recipients" in W.el("#settings").text, "the settings")
    W.fill("#settings-form", setting="smtp.max_recipients", value="321")
    W.wait(lambda: "Changed smtp.max_recipients" in W.message(), "the setting changed")
    assert "321" in S.cli("server", "show", check=True).stdout
    W.shot("5-servers")
    view("connectors", lambda: "dead.test" in W.el("#connector-list").text, "the connectors")
    W.fill("#connector-form", name="partner", spaces="partner.test *.partner.test", smarthost="127.0.0.1:2525",
           cost="3")
    W.wait(lambda: "partner" in W.el("#connector-list").text, "the new connector")
    assert "partner" in S.cli("connector", "list", check=True).stdout
    W.shot("6-connectors")
    # the row found afresh at each try: the list may be drawn again between finding and clicking
    W.wait(lambda: [tr for tr in W.els("#connector-list tbody tr") if "partner" in tr.text][0]
           .find_element("css selector", "button.delete").click() or True, "to delete the connector partner")
    W.wait(lambda: "Deleted connector partner" in W.message(), "the connector deleted")
    assert "partner" not in S.cli("connector", "list", check=True).stdout
    view("dkim", lambda: W.visible("#dkim-form"), "the DKIM view")
    W.fill("#dkim-form", domain="example.com")
    W.wait(lambda: "_domainkey.example.com. IN TXT" in W.el("#dkim-list").text, "the DKIM records")
    W.shot("7-dkim")
    view("sync", lambda: "no sync sources" in W.el("#sync-list").text, "the sync view")
    view("logs", lambda: "Interchange is running" in W.el("#log-lines").text, "the attendant's log")
    W.fill("#log-form", q="queue flush")
    W.wait(lambda: W.el("#log-total").text == "0 lines", "no flush in the attendant's log")
    W.el("#log-form [name=name]").send_keys("mta")
    W.fill("#log-form", q="queue flush")
    W.wait(lambda: "queue flush requested" in W.el("#log-lines").text, "the flush in the mta's log")
    W.shot("8-logs")
    W.el("#signout").click()
    W.wait(lambda: W.visible("#signin-form"), "the sign-out")


@test
def view_only_admin_reads_and_is_refused_changes():
    W.sign_in("vera", "pw-vera")
    W.wait(lambda: W.visible("#dashboard") and "smtpd" in W.el("#services").text, "the dashboard")
    view("connectors", lambda: "dead.test" in W.el("#connector-list").text, "the connectors")
    W.fill("#connector-form", name="mine", spaces="mine.test", smarthost="127.0.0.1:2526", cost="1")
    W.wait(lambda: "may not do this" in W.message() and "View-Only Admins" in W.message(), "the refusal")
    W.shot("9-view-only-refused")
    view("logs", lambda: "Organisation Admins" in W.message(), "the logs refused")
    W.el("#signout").click()
    assert W.csp_violations() == [], W.csp_violations()


if __name__ == "__main__":
    try:
        main("test_console_admin")
    finally:
        if W is not None:
            W.quit()
