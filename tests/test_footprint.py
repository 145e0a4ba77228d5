"""What each service's process holds: the modules its app needs and no others (each optional one
costs megabytes of resident memory for its whole life).

Each check runs in a fresh interpreter: this one has imported everything already.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    """``code`` run by a fresh interpreter in the repository; its stdout."""
    finished = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


# --- modules --------------------------------------------------------------------------------------

LOADED_BY_APP = """
    import json, sys
    from {package}.main import create_app
    create_app()
    print(json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by_app(package: str, env: dict[str, str]) -> set[str]:
    """The top-level packages a fresh interpreter holds once ``<package>.main:create_app()``
    has built its app, as uvicorn's factory does."""
    loaded = json.loads(run_python(LOADED_BY_APP.format(package=package), env))
    return {module.partition(".")[0] for module in loaded}


def test_gateway_with_sqlite_and_a_folder_loads_no_s3_postgres_numpy_alembic_or_cli(
    tmp_path: Path,
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path}/riffle.db",
        "STORAGE_URL": f"file://{tmp_path}/objects",
    }
    loaded = modules_loaded_by_app("gateway", env)
    # boto3/botocore only for an S3 STORAGE_URL, psycopg2 only for PostgreSQL, numpy only for a
    # waveform request, alembic only to migrate; rich and pygments only for httpx's CLI.
    needless = {
        "boto3",
        "botocore",
        "s3transfer",
        "psycopg2",
        "numpy",
        "alembic",
        "rich",
        "pygments",
    }
    assert loaded & needless == set()
    assert {"sqlalchemy", "httpx"} <= loaded  # the check sees what the gateway does load


def test_transcoder_loads_nothing_of_the_gateway_or_its_backends() -> None:
    loaded = modules_loaded_by_app("transcoder", {"PATH": "/usr/bin:/bin"})
    assert loaded & {"gateway", "sqlalchemy", "alembic", "boto3", "botocore", "psycopg2"} == set()
    assert loaded & {"httpx", "standardwebhooks", "fastapi_offline", "rich", "client"} == set()
    assert "servicekit" in loaded


def test_the_supervisor_of_make_run_loads_no_web_server_code() -> None:
    # It only starts and watches the services: uvicorn, Starlette and FastAPI are theirs.
    code = "import json, sys\nimport servicekit.supervisor\nprint(json.dumps(sorted(sys.modules)))"
    loaded = {module.partition(".")[0] for module in json.loads(run_python(code))}
    assert loaded & {"uvicorn", "starlette", "fastapi", "h11", "sqlalchemy", "numpy"} == set()
    assert "servicekit" in loaded


# --- malloc -----------------------------------------------------------------------------------

MAPPED_AFTER_A_LARGER_FREE = """
    import ctypes, sys
    from servicekit.malloc import tune_malloc

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    tuned = {tuned} and tune_malloc()
    freed = bytearray(8 << 20)
    del freed  # a mapped block freed: glibc's default threshold rises to its size
    before = libc.mallinfo2().hblks
    block = bytearray(2 << 20)
    print(tuned, libc.mallinfo2().hblks - before)
"""


def test_the_services_malloc_maps_large_buffers_even_after_larger_ones_were_freed() -> None:
    # servicekit.malloc: with glibc's sliding threshold the 2 MiB block would come from the heap.
    assert run_python(MAPPED_AFTER_A_LARGER_FREE.format(tuned=False)).split() == ["False", "0"]
    assert run_python(MAPPED_AFTER_A_LARGER_FREE.format(tuned=True)).split() == ["True", "1"]
