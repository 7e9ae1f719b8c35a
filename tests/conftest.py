import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tests use tiny models that gain nothing from threads; on a busy 2-core machine, idle-
    spinning OpenMP threads made training tests ~50x slower. Restored at the end."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
