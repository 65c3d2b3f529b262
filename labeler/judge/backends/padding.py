"""Left padding for batched decoder inputs, shared by the transformers backend and the bt-probe features."""

import torch


def left_pad(rows: list[list[int]], pad_id: int, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (ids, attention mask) on `device`, padded on the left so every row ends at the last column."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long, device="cpu")
    mask = torch.zeros((len(rows), width), dtype=torch.long, device="cpu")
    for r, row in enumerate(rows):
        if row:
            ids[r, width - len(row):] = torch.tensor(row, device="cpu")
            mask[r, width - len(row):] = 1
    return ids.to(device), mask.to(device)


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip padding and holes in the mask."""
    return (mask.cumsum(-1) - 1).clamp(min=0)
