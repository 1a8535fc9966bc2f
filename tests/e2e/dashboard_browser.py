#!/usr/bin/python3
"""Drives the relais dashboard in headless Chromium for test_e2e_dashboard.

usage: dashboard_browser.py URL SCREENSHOT FIGURES PERIOD

Prints "ready" once the alerts page is live (the C test then moves the
broker's clock so that an alert opens), waits for the alert to appear on
the same page without a reload, acknowledges it with a note from the page,
waits for the page to show it acknowledged, takes a screenshot, then opens
the indicators for PERIOD and writes the figures the page shows to FIGURES
as JSON ({measure: text}).  Prints "done" and exits 0; any failure prints
"error: ..." and exits 1.  Every wait is bounded.
"""
import json
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 90
NOTE = "appel de la Mission locale prevu"


def main():
    url, shot, figures, period = sys.argv[1:5]
    profile = tempfile.mkdtemp(prefix="relais-chromium-")
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--window-size=1400,900", "--lang=fr-FR",
              "--user-data-dir=" + profile):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                           options=opts)
    try:
        wait = WebDriverWait(drv, WAIT_S)
        drv.get(url)
        wait.until(lambda d: d.execute_script(
            "return document.body.dataset.ready === 'yes' && "
            "Number(document.body.dataset.version || 0) >= 1 && "
            "document.getElementById('live').textContent.includes('direct')"))
        if drv.find_elements(By.CSS_SELECTOR, "tr[data-alert]"):
            raise AssertionError("an alert is listed before the clock moved")
        # A mark that a reload would wipe out.
        drv.execute_script("window.relaisMark = 42;")
        print("ready", flush=True)

        rows = wait.until(lambda d: d.find_elements(
            By.CSS_SELECTOR, "tr[data-alert]") or False)
        if drv.execute_script("return window.relaisMark") != 42:
            raise AssertionError("the page was reloaded")
        row = rows[0]
        alert = row.get_attribute("data-alert")
        print("alert " + alert, flush=True)
        row.find_element(By.CSS_SELECTOR, "input.note").send_keys(NOTE)
        row.find_element(By.CSS_SELECTOR, "button.ack").click()
        wait.until(lambda d: d.find_element(
            By.CSS_SELECTOR, "tr[data-alert='%s'] td.status" % alert
        ).text == "acknowledged")
        drv.save_screenshot(shot)

        drv.find_element(By.CSS_SELECTOR, "nav button[data-page='indicators']").click()
        drv.find_element(By.ID, "report-period").send_keys(period)
        drv.find_element(By.CSS_SELECTOR, "#report-form button[type='submit']").click()
        wait.until(lambda d: d.find_element(By.ID, "report").get_attribute(
            "data-loaded"))
        shown = {td.get_attribute("data-measure"): td.text
                 for td in drv.find_elements(By.CSS_SELECTOR, "td[data-measure]")}
        charts = len(drv.find_elements(By.CSS_SELECTOR, "#report-charts svg"))
        with open(figures, "w", encoding="utf-8") as f:
            json.dump({"figures": shown, "charts": charts}, f)
        print("done", flush=True)
    finally:
        drv.quit()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the C test prints it as the failure's reason
        print("error: %s: %s" % (type(e).__name__, e), flush=True)
        sys.exit(1)
