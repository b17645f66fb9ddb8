import subprocess
import sys


def test_the_wsgi_module_freezes_the_loaded_heap_out_of_the_collector():
    code = "import gc, contacts_project.wsgi\nprint(gc.get_freeze_count())"
    frozen = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert int(frozen) > 50_000  # Django, DRF, the app's modules and views
