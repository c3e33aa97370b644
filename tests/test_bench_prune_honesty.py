"""bench.prune's honesty part at toy size: every named score's kept set, its overlaps and a verdict per row."""

from __future__ import annotations

from dataclasses import replace

from bench.prune import PROTOTYPES, Scale, honesty, honesty_markdown
from engine.data.dataset import ImageDataset
from engine.select.auto import named_policy, policy_for
from engine.select.config import SelectionConfig

TOY = Scale(per_class=None, width=4, proxy_epochs=4, eval_images=400, eval_min_epochs=2, eval_max_epochs=4,
            full_data_epochs=2)


def test_each_named_score_gets_its_own_row_overlaps_and_a_verdict(digits: ImageDataset) -> None:
    data = replace(digits, x_train=digits.x_train[:600], y_train=digits.y_train[:600])
    result = honesty("digits", data, TOY, [0.1], seeds=2, log=lambda message: None)
    (block,) = result["keeps"]
    rows = {row["method"]: row for row in block["rows"]}
    assert rows[PROTOTYPES]["score_used"] is False and rows[PROTOTYPES]["policy"] == "prototypes"
    el2n_mode = named_policy(policy_for("el2n", 0.1)[0], SelectionConfig(keep=0.1), 0.1).mode
    assert rows["el2n"]["score_used"] is True and rows["el2n"]["policy"] == el2n_mode
    assert set(rows["el2n"]["overlap"]) == set(rows) - {"el2n"}
    assert all(0.0 <= value <= 1.0 for row in rows.values() for value in row["overlap"].values())
    assert rows["el2n"]["overlap"]["forgetting"] < 1.0  # two named scores keep different sets
    assert all(row["gain"]["verdict"] in {"better", "worse", "within noise"} for row in rows.values())
    table = "\n".join(honesty_markdown([result]))
    assert f"| el2n | {el2n_mode} | yes |" in table and f"| {PROTOTYPES} | prototypes | no |" in table
