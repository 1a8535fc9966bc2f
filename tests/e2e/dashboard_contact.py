#!/usr/bin/python3
"""Opens a person's file on a relais dashboard in headless Chromium, for
test_e2e_sealed: the agent's Parcours page, the id typed in, and what the
file shows of the contact details sealed into the person's referrals.

usage: dashboard_contact.py URL PARTICIPANT

Prints one JSON line: {"referrals": N, "contacts": {referral: text}} (the
rows of the referral table, and of the contact table if the page drew
one), then exits 0; any failure prints "error: ..." and exits 1.  Every
wait is bounded.
"""
import json
import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 90


def read_file(drv, participant):
    wait = WebDriverWait(drv, WAIT_S)
    wait.until(lambda d: d.execute_script(
        "return document.body.dataset.ready === 'yes'"))
    drv.find_element(By.CSS_SELECTOR,
                     "nav button[data-page='participant']").click()
    drv.find_element(By.ID, "participant-id").send_keys(participant)
    drv.find_element(By.CSS_SELECTOR,
                     "#participant-form button[type='submit']").click()
    rows = wait.until(lambda d: d.find_elements(
        By.CSS_SELECTOR, "#participant-referrals tbody tr") or False)
    contacts = {tr.get_attribute("data-referral"):
                tr.find_element(By.CSS_SELECTOR, "td.contact").text
                for tr in drv.find_elements(
                    By.CSS_SELECTOR, "#participant-contacts tbody tr")}
    return {"referrals": len(rows), "contacts": contacts}


def main():
    url, participant = sys.argv[1:3]
    profile = tempfile.mkdtemp(prefix="relais-chromium-")
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--lang=fr-FR", "--user-data-dir=" + profile):
        opts.add_argument(a)
    try:
        drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                               options=opts)
        try:
            drv.get(url)
            print(json.dumps(read_file(drv, participant)), flush=True)
        finally:
            drv.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the C test prints it as the failure's reason
        print("error: %s: %s" % (type(e).__name__, e), flush=True)
        sys.exit(1)
