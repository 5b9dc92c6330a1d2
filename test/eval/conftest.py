import sys

import torch
from pathlib import Path

# One thread: on a shared 2-core machine OpenMP threads spin against other processes (10x slower).
torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
sys.path.insert(0, str(Path(__file__).parent))  # random_graphs
