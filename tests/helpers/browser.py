"""A real browser: Debian's Chromium, driven by Playwright."""

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def log_in(page, username, password):
    """Log in to the admin; supervisors and compliance officers then enter their TOTP code, or
    enrol an authenticator first (read from the page's secret, as a person's app would)."""
    page.goto("/admin/login/")
    page.get_by_label("ユーザー名").fill(username)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_load_state()
    if "/admin/otp/verify/" in page.url:
        from django.contrib.auth import get_user_model

        from .second_factor import current_code, totp_device

        user = get_user_model().objects.get(username=username)
        page.locator("input[name=code]").fill(current_code(totp_device(user)))
        page.locator("#content-main form button[type=submit]").click()
    elif "/admin/otp/enrol/" in page.url:
        from base64 import b32decode

        from .second_factor import code_for_key

        secret = page.locator("#otp-secret").inner_text()
        page.locator("input[name=code]").fill(code_for_key(b32decode(secret)))
        page.locator("#content-main form button[type=submit]").click()
        page.locator("#recovery-codes").wait_for()
        page.locator("#content-main a.button").click()


AXE_CORE = Path(__file__).resolve().parent.parent / "vendor" / "axe-core" / "axe.min.js"


def axe_violations(page, impacts=("serious", "critical")):
    """What axe-core finds wrong on the page as it stands, limited to ``impacts``: for each
    rule broken, its id, impact, help text and the first three elements (CSS selectors).

    The page's browser context must bypass the Content-Security-Policy (the ``axe_page``
    fixture does): the policy rightly refuses the script this injects."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=AXE_CORE)
    return page.evaluate(
        """async (impacts) => {
            const results = await axe.run(document, {resultTypes: ["violations"]});
            return results.violations
                .filter((violation) => impacts.includes(violation.impact))
                .map((violation) => ({
                    id: violation.id,
                    impact: violation.impact,
                    help: violation.help,
                    targets: violation.nodes.slice(0, 3).map((node) => node.target.join(" ")),
                }));
        }""",
        list(impacts),
    )
