import torch

# One thread: on a shared 2-core machine OpenMP threads spin against other processes (10x slower).
torch.set_num_threads(1)
