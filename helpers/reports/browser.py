"""Read a built book as a reader would: every page opened in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium), its console, images and internal links checked, screenshots kept."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def chromium_paths() -> tuple[str, str] | None:
    """(browser, chromedriver) found on PATH, or None when either is missing."""
    browser = next((shutil.which(b) for b in CHROMIUM if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def read_book(index: Path, screenshots: Path, shoot: tuple[str, ...] = ("index.html", "08.html")) -> dict:
    """Open every page of the book beside ``index`` in headless Chromium.

    Returns ``{"pages": n, "problems": [sentences]}``: a console message at level SEVERE, an image whose natural
    width is 0 (not loaded), or a link inside the site whose file (or #anchor) does not exist is one problem each.
    Pages named in ``shoot`` are saved as PNG screenshots in ``screenshots``. Raises RuntimeError naming the
    Debian packages when Chromium or its driver is missing.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = chromium_paths()
    if found is None:
        raise RuntimeError("headless Chromium is not installed; install the Debian packages chromium and "
                           "chromium-driver (make setup does, as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    site = index.parent.resolve()
    screenshots.mkdir(parents=True, exist_ok=True)
    problems, pages = [], sorted(site.glob("*.html"))
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    try:
        for page in pages:
            driver.get(page.as_uri())
            problems += [f"{page.name}: console {e['level']}: {e['message']}" for e in driver.get_log("browser")
                         if e["level"] == "SEVERE"]
            broken = driver.execute_script(
                "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                ".map(i => i.getAttribute('src').slice(0, 80));")
            problems += [f"{page.name}: image not loaded: {src}" for src in broken]
            links = driver.execute_script("return Array.from(document.links).map(a => a.href);")
            problems += [f"{page.name}: {p}" for p in _dead_links(links, site)]
            if page.name in shoot:
                driver.save_screenshot(str(screenshots / f"{page.stem}.png"))
    finally:
        driver.quit()
    return {"pages": len(pages), "problems": problems}


def _dead_links(links: list[str], site: Path) -> list[str]:
    """The links among ``links`` that point inside the site at a missing file or a missing #anchor."""
    dead = []
    for href in links:
        url = urlparse(href)
        if url.scheme != "file":
            continue
        target = Path(unquote(url.path))
        if site not in target.parents and target != site:
            dead.append(f"link leaves the book: {href}")
        elif not target.is_file():
            dead.append(f"link to a missing file: {target.relative_to(site)}")
        elif url.fragment and target.suffix == ".html" and f'id="{url.fragment}"' not in target.read_text(errors="replace"):
            dead.append(f"link to a missing anchor: {target.name}#{url.fragment}")
    return dead
