"""test_console.py - the administration console (/admin/) and the self-service page (/me/) in a real headless
Chromium (Debian's chromium and chromium-driver, driven by python3-selenium): the administrator signs in, creates a
user, finds it in the address book and signs out; the new user changes their password at /me/ (the policy refuses a
short one) and signs in over IMAP with it. Each step saves a screenshot under BUILD/test-output/test_console/. The
pages carry a Content-Security-Policy without inline script, and Chromium reports no violation of it."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser import Browser  # noqa: E402
from harness import System, main, run, setup, test  # noqa: E402

S = None
W = None  # the browser
B = None  # its driver
HOST = "mail.example.com"


def url(path):
    return W.url(path)


def shot(name, height=None):
    W.shot(name, height)


def wait(cond, what, timeout=10):
    W.wait(cond, what, timeout)


def el(sel):
    return W.el(sel)


def click(sel):
    """Clicks sel once it is there (a table the page just drew again holds new elements)."""
    wait(lambda: el(sel).click() or True, "to click " + sel)


def message():
    return W.message()


def visible(sel):
    return W.visible(sel)


def fill(form, **values):
    W.fill(form, **values)


def imap_login(password):
    """curl signs in as nina over IMAPS, verifying the server's certificate."""
    ca = os.path.join(S.base, "server-ca.pem")
    with open(ca, "w") as f:
        f.write(S.cli("cert", "show", "--pem", check=True).stdout)
    r = run(["curl", "-sS", "--max-time", "10", "--cacert", ca,
             "--resolve", "%s:%d:127.0.0.1" % (HOST, S.ports["imaps"]), "-u", "nina:" + password,
             "imaps://%s:%d/" % (HOST, S.ports["imaps"]), "-X", "NOOP"])
    return r.returncode == 0


def csp_violations():
    return W.csp_violations()


@setup
def system_and_browser():
    global S, W, B
    S = System(strict_passwords=True)
    W = Browser(S, "test_console")
    B = W.driver


@test
def pages_are_served_with_a_strict_policy():
    r = run(["curl", "-sS", "-k", "-D", "-", "-o", "/dev/null",
             "--resolve", "%s:%d:127.0.0.1" % (HOST, S.ports["https"]), url("/admin/")])
    head = r.stdout.lower()
    assert "content-security-policy: default-src 'none'; script-src 'self';" in head, head
    assert "unsafe-inline" not in head and "x-frame-options: deny" in head, head
    # plain HTTP redirects to HTTPS
    r = run(["curl", "-sS", "-D", "-", "-o", "/dev/null", "http://127.0.0.1:%d/admin/" % S.ports["http"]])
    assert " 301" in r.stdout.split("\n")[0] and "location: https://" in r.stdout.lower(), r.stdout


@test
def admin_signs_in_creates_a_user_and_finds_it():
    B.get(url("/admin/"))
    wait(lambda: visible("#signin-form"), "the sign-in form")
    shot("1-sign-in")
    fill("#signin-form", login="admin", password="wrong")
    wait(lambda: "wrong login or password" in message(), "the refusal")
    fill("#signin-form", login="admin", password=S.admin_password)
    wait(lambda: visible("#dashboard") and "smtpd" in el("#services").text
         and "Organisation Admins" in el("#roles").text, "the dashboard")
    assert "admin" in el("#who").text, el("#who").text
    assert el("#queue-length").text == "0 active, 0 deferred", el("#queue-length").text
    shot("2-dashboard")
    el("nav a[data-view=recipients]").click()
    wait(lambda: visible("#user-form"), "the recipients view")
    fill("#user-form", login="nina", given="Nina", surname="Novak", password="Blue-Harbour-2026!",
         aliases="nn@example.com")
    wait(lambda: "Created user nina" in message(), "the user created")
    # the attendant gives her a primary address from the recipient policy within a second: search until it shows
    for _ in range(30):
        fill("#search-form", q="novak")
        time.sleep(0.3)
        if "nina.novak@example.com" in el("#results").text:
            break
    assert "Nina Novak" in el("#results").text and "nina.novak@example.com" in el("#results").text, \
        el("#results").text
    shot("3-address-book")
    assert "nina" in S.cli("user", "show", "nina", check=True).stdout


@test
def admin_flushes_the_queue_tracks_a_message_and_signs_out():
    # a message the transfer agent cannot deliver stays in the queue: dead.test goes to a port where nothing listens
    S.hold_mail_for("dead.test")
    r = run(["swaks", "--server", "127.0.0.1:%d" % S.ports["submission"], "--tls", "--auth", "PLAIN",
             "--auth-user", "nina", "--auth-password", "Blue-Harbour-2026!", "--from", "nina.novak@example.com",
             "--to", "someone@dead.test", "--header", "Subject: stuck in the queue"], timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    el("nav a[data-view=queue]").click()
    for _ in range(50):
        if "someone@dead.test" in el("#queue-list").text:
            break
        time.sleep(0.3)
        B.refresh()
    wait(lambda: "someone@dead.test" in el("#queue-list").text, "the queued message")
    shot("4-queue")
    mark = S.log_mark("mta")
    el("#flush").click()
    wait(lambda: "Flushed" in message(), "the flush")
    S.wait_log("mta", "queue flush requested", mark)
    shot("5-queue-flushed")
    el("nav a[data-view=tracking]").click()
    fill("#track-form", q="someone@dead.test")
    wait(lambda: "someone@dead.test" in el("#timelines").text, "the timeline")
    events = [li.text for li in B.find_elements("css selector", "#timelines ol.timeline li")]
    assert len(events) >= 2, events
    shot("6-tracking")
    el("nav a[data-view=queue]").click()
    wait(lambda: "someone@dead.test" in el("#queue-list").text, "the queue again")
    click("#queue-list button.delete")  # the list may be drawn again meanwhile: found afresh
    wait(lambda: "Deleted" in message(), "the deletion")
    assert "someone@dead.test" not in S.cli("queue", "list", check=True).stdout
    el("#signout").click()
    wait(lambda: visible("#signin-form") and "signed out" in message(), "the sign-out")
    shot("7-signed-out")
    # the session is gone: the API refuses the page's calls
    B.get(url("/admin/#recipients"))
    wait(lambda: visible("#signin-form"), "the sign-in form after sign-out")
    assert csp_violations() == [], csp_violations()


@test
def user_changes_password_at_me():
    B.get(url("/me/"))
    wait(lambda: visible("#signin-form"), "the sign-in form")
    fill("#signin-form", login="nina", password="Blue-Harbour-2026!")
    wait(lambda: visible("#password-form"), "the account page")
    assert not visible("nav a[data-view=recipients]") and el("#title").text == "My account"
    shot("8-me")
    fill("#password-form", old="Blue-Harbour-2026!", password="short", again="short")
    wait(lambda: el("#message").get_attribute("class") == "error" and message(), "the policy's refusal")
    refusal = message()
    shot("9-me-refused")
    fill("#password-form", old="Blue-Harbour-2026!", password="Green-Valley-2027!", again="Green-Valley-2027!")
    wait(lambda: "password is changed" in message(), "the change")
    shot("10-me-changed")
    assert "too short" in refusal and "password.min_length" in refusal, refusal
    assert imap_login("Green-Valley-2027!"), "the new password does not work over IMAP"
    assert not imap_login("Blue-Harbour-2026!"), "the old password still works"
    el("#signout").click()
    assert csp_violations() == [], csp_violations()


@test
def admin_edits_a_users_addresses_and_forwarding():
    S.cli("user", "add", "otto", "--given", "Otto", "--surname", "Berg", "--password", "Red-Canyon-2026!", check=True)
    B.get(url("/admin/#recipients"))
    wait(lambda: visible("#signin-form"), "the sign-in form")
    fill("#signin-form", login="admin", password=S.admin_password)
    wait(lambda: visible("#search-form"), "the recipients view")
    fill("#search-form", q="novak")
    wait(lambda: "nina.novak@example.com" in el("#results").text and "Otto" not in el("#results").text,
         "nina alone in the address book")
    click("#results tbody tr")
    wait(lambda: visible("#recipient") and "nina.novak@example.com" in el("#r-addresses").text, "nina's page")
    assert "nn@example.com" in el("#r-addresses").text and "primary" in el("#r-addresses").text
    fill("#r-alias-form", address="nina.n@example.com")
    wait(lambda: "nina.n@example.com" in el("#r-addresses").text, "the new address")
    click("#r-addresses button[data-primary='nina.n@example.com']")
    wait(lambda: "nina.n@example.com is the primary" in message(), "the new primary")
    click("#r-addresses button[data-remove='nn@example.com']")
    wait(lambda: "nn@example.com" not in el("#r-addresses").text, "the alias removed")
    el("#r-forward-form [name=keep]").click()
    fill("#r-forward-form", to="otto")
    wait(lambda: "forwarded to otto" in message(), "the forwarding saved")
    fill("#r-details-form", title="Harbour pilot", manager="otto")
    wait(lambda: "Saved the details" in message(), "the details saved")
    shot("11-recipient-edited", 1900)
    out = S.cli("user", "show", "nina", check=True).stdout
    assert "nina.n@example.com" in out and "nn@example.com" not in out, out
    assert "Harbour pilot" in out and "otto" in out, out
    r = S.ldapsearch("(uid=nina)", "mail", "ixForwardTo", "ixDeliverAndRedirect", bind_dn=S.admin_dn,
                     password=S.admin_password).stdout
    assert "mail: nina.n@example.com" in r and "ixForwardTo: uid=otto," in r and "ixDeliverAndRedirect: TRUE" in r, r
    el("#signout").click()
    wait(lambda: "signed out" in message(), "the sign-out")
    assert csp_violations() == [], csp_violations()


@test
def user_sets_out_of_office_and_uses_an_app_password():
    B.get(url("/me/"))
    wait(lambda: visible("#signin-form"), "the sign-in form")
    fill("#signin-form", login="nina", password="Green-Valley-2027!")
    # the form is filled from the API after it shows: a click before that would be overwritten
    wait(lambda: visible("#oof-form[data-loaded]") and visible("#app-form"), "the self-service page")
    el("#oof-form [name=enabled]").click()
    fill("#oof-form", internal="Back on Monday.", external="I am away; write to otto@example.com.")
    wait(lambda: "Out of office is on" in message(), "out of office saved")
    assert "Out of office: on" in S.cli("user", "show", "nina", check=True).stdout
    fill("#app-form", name="thunderbird")
    wait(lambda: visible("#app-secret") and len(el("#app-secret code").text) >= 16, "the new app password")
    secret = el("#app-secret code").text
    wait(lambda: "thunderbird" in el("#app-passwords").text, "the app password listed")
    shot("12-me-oof-and-app-password", 1900)
    assert imap_login(secret), "the app password does not work over IMAP"
    B.refresh()  # the page again: the secret is gone, the sign-in just made is listed
    wait(lambda: "thunderbird" in el("#app-passwords").text and "signed in" in el("#signins").text, "the sign-ins")
    assert secret not in B.page_source and not visible("#app-secret")
    assert el("#oof-form [name=internal]").get_attribute("value") == "Back on Monday."
    shot("13-me-sign-ins", 1900)
    click("#app-passwords button[data-name=thunderbird]")
    wait(lambda: "Revoked" in message(), "the revocation")
    assert not imap_login(secret), "a revoked app password still works"
    el("#signout").click()
    wait(lambda: "signed out" in message(), "the sign-out")
    assert csp_violations() == [], csp_violations()


def stop_browser():
    if W is not None:
        W.quit()


if __name__ == "__main__":
    try:
        main("test_console")
    finally:
        stop_browser()
