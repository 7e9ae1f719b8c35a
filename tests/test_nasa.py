"""The mill.mat reader refuses a file that is not a readable MATLAB 5 .mat in one line naming it."""
import numpy as np
import pytest
import scipy.io

from spinn_utils.core.errors import SpinnError
from spinn_utils.data.nasa import check_mat_file, read_mill_mat


def _damaged(path):
    """A real .mat with its body cut short: the header is right, the content is not."""
    scipy.io.savemat(path, {"mill": np.arange(200.0).reshape(20, 10)})
    path.write_bytes(path.read_bytes()[:200])


CASES = {  # what scipy did with each before the header check
    "text (scipy: IndexError)": (lambda p: p.write_text("this is not a mat file\n" * 10), "not a MATLAB .mat file"),
    "zeros (scipy: MemoryError)": (lambda p: p.write_bytes(b"\0\0\0\0hello world" * 20), "not a MATLAB .mat file"),
    "a CSV": (lambda p: p.write_text("experiment,run,time_min\n1,1,0.5\n" * 20), "not a MATLAB .mat file"),
    "empty": (lambda p: p.write_bytes(b""), "an empty file"),
    "v7.3 (HDF5)": (lambda p: p.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(512, b" ")), "-v7"),
    "damaged body": (_damaged, "damaged or truncated"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_file_that_is_not_a_readable_mat_is_one_line_naming_it(tmp_path, case):
    write, match = CASES[case]
    path = tmp_path / "fake.mat"
    write(path)
    with pytest.raises(SpinnError, match=match) as err:
        read_mill_mat(path, window_samples=100)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and str(path) in message and message.startswith("cannot read")


def test_a_mat_file_scipy_wrote_passes_the_header_check(tmp_path):
    path = tmp_path / "ok.mat"
    scipy.io.savemat(path, {"mill": np.zeros((2, 2))})
    check_mat_file(path)  # no error: the header is MATLAB 5's
    with pytest.raises(SpinnError, match="data file not found"):
        check_mat_file(tmp_path / "missing.mat")
