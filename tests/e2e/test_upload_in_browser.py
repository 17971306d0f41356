"""A large upload in the browser: while the server reads and stores the file, the page says how far
it has got (rows and share of the file), then shows the import's result."""

import numpy as np
import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Item
from app.projects.schemas import ProjectCreate
from app.projects.service import create_project
from app.users.service import create_user
from tests.e2e.test_label_in_browser import log_in

pytestmark = pytest.mark.browser
ROWS = 100_000  # some seconds of server-side work: several polls see it under way


@pytest.fixture
def empty_tabular_project(live_server):
    with session_scope() as session:
        admin = create_user(session, username="boss", password="password-123", role="admin")
        project = create_project(session, created_by=admin, data=ProjectCreate(
            name="Big table", kind="tabular", labels=["a", "b"]))
        return project.id


def test_server_side_progress_of_a_large_upload(page, live_server, empty_tabular_project, tmp_path, artifacts):
    X = np.random.default_rng(0).normal(size=(ROWS, 5)).round(3)
    path = tmp_path / "big.csv"
    np.savetxt(path, X, delimiter=",", header="f0,f1,f2,f3,f4", comments="", fmt="%.3f")
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{empty_tabular_project}")
    page.set_input_files("#upload-form input[type=file]", str(path))
    seen = []
    page.expose_function("noteProgress", lambda text: seen.append(text))
    # Record every text the status line shows, as the page shows it.
    page.evaluate("""() => new MutationObserver(() => {
        const t = document.getElementById('upload-status').innerText.trim();
        if (t) window.noteProgress(t);
    }).observe(document.getElementById('upload-status'), {childList: true, subtree: true, characterData: true})""")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-result .success", timeout=120_000)
    assert f"Imported {ROWS:,}" in page.locator("#upload-result").inner_text()
    reading = [t for t in seen if t.startswith("Read and stored")]
    assert reading, f"no progress was shown while the server read the file; saw {seen!r}"
    rows_shown = [int(t.split()[3].replace(",", "")) for t in reading]
    assert rows_shown == sorted(rows_shown) and any(0 < n < ROWS for n in rows_shown), rows_shown
    assert any("% of the file" in t for t in reading)
    # Cleared once the request is over (a poll still in flight must not bring it back).
    page.wait_for_function("() => document.getElementById('upload-status').innerText.trim() === ''", timeout=5_000)
    page.wait_for_timeout(1_200)
    assert page.locator("#upload-status").inner_text().strip() == ""


def test_a_double_click_on_upload_imports_the_file_once(page, live_server, empty_tabular_project, tmp_path):
    # rows without ids: a second import would add copies, and the UI cannot delete items
    path = tmp_path / "small.csv"
    path.write_text("f0,f1\n" + "".join(f"{i},{i * 2}\n" for i in range(3000)))
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{empty_tabular_project}")
    page.set_input_files("#upload-form input[type=file]", str(path))
    page.dblclick("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-result .success", timeout=60_000)
    page.wait_for_timeout(1_000)  # a second request, if one had gone out, would have finished by now
    with session_scope() as session:
        n_items = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == empty_tabular_project))
    assert n_items == 3000


def test_choosing_a_file_shows_its_preview_and_naming_a_column_updates_it(page, live_server, empty_tabular_project,
                                                                          tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("code,f0,f1\n" + "".join(f"c{i},{i},{i * 2}\n" for i in range(20)))
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{empty_tabular_project}")
    page.set_input_files("#upload-form input[type=file]", str(path))
    page.wait_for_selector("#upload-preview .preview-table")
    header = page.locator("#upload-preview thead").inner_text()
    assert "code\nmetadata" in header and "f0\nfeature" in header
    page.fill("#upload-form input[name=id_column]", "code")
    page.wait_for_function("document.querySelector('#upload-preview thead').innerText.includes('code\\nid')")
    assert page.locator("#upload-preview tbody tr").count() == 10
    with session_scope() as session:
        stored = session.scalar(select(func.count()).select_from(Item).where(Item.project_id == empty_tabular_project))
    assert stored == 0


def test_the_preview_offers_to_import_a_column_of_the_projects_labels(page, live_server, empty_tabular_project,
                                                                      tmp_path):
    """QA: an admin who read the labels from a file's column, then uploaded that file, got them as
    metadata, and the result page sent them to a new project."""
    path = tmp_path / "rows.csv"
    path.write_text("f0,f1,label,note\n" + "".join(f"{i},{i * 2},{'ab'[i % 2] if i % 3 else ''},x\n"
                                                   for i in range(30)))
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{empty_tabular_project}")
    page.set_input_files("#upload-form input[type=file]", str(path))
    page.wait_for_selector("#upload-preview .preview-table")
    assert "label\nmetadata" in page.locator("#upload-preview thead").inner_text()
    assert page.locator("#upload-preview button[data-label-column]").count() == 1  # not `note`
    page.click("#upload-preview button[data-label-column=label]")
    page.wait_for_function("document.querySelector('#upload-preview thead').innerText.includes('label\\nlabel')")
    assert page.input_value("#upload-form input[name=label_column]") == "label"
    assert page.locator("#upload-preview button[data-label-column]").count() == 0
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-result .success")
    assert "labels: label (20 items labelled)" in page.locator("#upload-result").inner_text()


def test_a_small_parquet_file_is_previewed_whole(page, live_server, empty_tabular_project, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"code": [f"c{i}" for i in range(20)], "f0": [float(i) for i in range(20)]}), path)
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{empty_tabular_project}")
    page.set_input_files("#upload-form input[type=file]", str(path))
    page.wait_for_selector("#upload-preview .preview-table")
    assert "f0\nfeature" in page.locator("#upload-preview thead").inner_text()


def test_a_file_over_the_upload_limit_is_refused_before_it_is_sent(page, live_server, empty_tabular_project,
                                                                   tmp_path):
    """QA: the page showed the server's 413 as raw JSON, the limit as "0 MB", and a half-full bar."""
    path = tmp_path / "big.csv"
    path.write_text("f0,f1\n" + "".join(f"{i},{i * 2}\n" for i in range(20_000)))
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/{empty_tabular_project}")
    assert int(page.get_attribute("#upload-form", "data-max-bytes")) > 100 * 1024 ** 2  # the server's own
    page.evaluate("document.getElementById('upload-form').dataset.maxBytes = String(100 * 1024)")
    page.set_input_files("#upload-form input[type=file]", str(path))
    sent = []
    page.on("request", lambda request: sent.append(request.url) if request.url.endswith("/upload") else None)
    page.click("#upload-form button[type=submit]")
    message = page.locator("#upload-result .error")
    message.wait_for(timeout=5_000)
    assert message.inner_text() == ("big.csv is 218 KB, larger than this server's upload limit of 100 KB: split it "
                                    "into smaller files and upload them one after the other.")
    page.wait_for_timeout(500)
    assert sent == [] and page.locator("#upload-progress").is_hidden()
    with session_scope(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 0


def test_a_new_projects_labels_come_from_a_files_column_and_the_project_is_created_with_them(page, live_server,
                                                                                                tmp_path):
    from app.models import Project

    with session_scope() as session:
        create_user(session, username="boss", password="password-123", role="admin")
    path = tmp_path / "pool.csv"
    path.write_text("text,gold\n" + "".join(f"t{i},{label}\n" for i, label in enumerate("bbabcbb")))
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/projects/new")
    page.fill("input[name=name]", "From a file")
    page.click("text=Take the labels from a column of a file")
    page.set_input_files("#labels-file", str(path))
    page.fill("#labels-column", "gold")
    page.press("#labels-column", "Enter")  # as the button does (QA: Enter reloaded the form, emptied)
    page.wait_for_function("document.querySelector('input[name=labels]').value === 'b, a, c'")
    assert page.input_value("input[name=name]") == "From a file"
    assert "b (5 rows), a (1 row), c (1 row)" in page.locator("#labels-field").inner_text()
    # a read that finds nothing says why and leaves the field as it was (QA: it emptied it)
    page.fill("#labels-column", "nope")
    page.click("text=Read the labels")
    page.wait_for_selector("#labels-note .error")
    assert page.input_value("input[name=labels]") == "b, a, c"
    page.click("text=Create project")
    page.wait_for_url(f"{live_server.url}/projects/*")
    with session_scope(write=False) as session:
        assert session.scalars(select(Project.labels)).one() == ["b", "a", "c"]
