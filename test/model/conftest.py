import pytest
import torch

# One thread: on a shared 2-core machine OpenMP threads spin against other processes (10x slower).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def trained_toy():
    """A tiny model overfitted on 8 toy scenes (shared by the model tests; ~15 s on 2 cores)."""
    from toy_data import VOCAB, ToyDataset, tiny_config

    from sim2sg_core.model import SGModel
    from sim2sg_core.train.trainer import Trainer

    torch.manual_seed(0)
    ds = ToyDataset(8)
    cfg = tiny_config(steps=150)
    model = SGModel.from_config(cfg, VOCAB)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tr = Trainer(model, cfg, VOCAB, d, device="cpu", progress=False)
        tr.fit(tr.make_loader(ds))
    return model.eval(), cfg, ds, tr.history
