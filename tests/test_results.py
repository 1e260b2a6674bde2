import numpy as np
import pytest

from sequoia.results import Results, TransferMatrix

MATRIX = [
    [0.10, 0.20, 0.30],
    [0.90, 0.25, 0.30],
    [0.70, 0.80, 0.40],
    [0.50, 0.60, 0.95],
]


def test_average_final_is_mean_of_last_row():
    assert TransferMatrix(MATRIX).average_final() == pytest.approx((0.5 + 0.6 + 0.95) / 3)


def test_forgetting_is_max_based_over_earlier_rows():
    # task 0: best earlier 0.9, final 0.5 -> 0.4; task 1: best earlier 0.8, final 0.6 -> 0.2
    assert TransferMatrix(MATRIX).average_forgetting() == pytest.approx(0.3)


def test_forgetting_uses_best_earlier_row_not_just_trained_row():
    # Task 0 improves after task 1 (0.9 -> 0.95) and then drops to 0.5: forgetting counts from 0.95.
    m = TransferMatrix([[0, 0, 0], [0.9, 0, 0], [0.95, 0.8, 0], [0.5, 0.8, 0.9]])
    assert m.average_forgetting() == pytest.approx((0.45 + 0.0) / 2)
    assert m.bwt() == pytest.approx(((0.5 - 0.9) + (0.8 - 0.8)) / 2)


def test_bwt_and_fwt():
    m = TransferMatrix(MATRIX)
    assert m.bwt() == pytest.approx(((0.5 - 0.9) + (0.6 - 0.8)) / 2)
    # FWT: R[1,1] - R[0,1] and R[2,2] - R[0,2]
    assert m.fwt() == pytest.approx(((0.25 - 0.2) + (0.4 - 0.3)) / 2)


def test_single_joint_phase_has_no_forgetting_metrics():
    m = TransferMatrix([[0.1, 0.1], [0.8, 0.9]])
    assert m.average_forgetting() is None and m.bwt() is None and m.fwt() is None
    assert m.average_final() == pytest.approx(0.85)


def test_format_names_rows_and_columns():
    text = TransferMatrix(MATRIX).format()
    assert "before" in text and "after 2" in text and "task 2" in text


def test_results_dict_separates_runtime_from_metrics():
    r = Results("sl.incremental", "naive", TransferMatrix(MATRIX), runtime_s=1.5, trainable_parameters=10)
    d = r.to_dict()
    assert "runtime_s" not in d["metrics"] and d["runtime_s"] == 1.5
    assert np.allclose(d["transfer_matrix"], MATRIX)
    assert "average_forgetting" in r.summary()


def test_rejects_non_matrix():
    with pytest.raises(ValueError):
        TransferMatrix([1.0, 2.0])


def test_forgetting_ignores_rows_measured_before_the_task_was_trained():
    """Positive BWT: every task ends at its best, so nothing is forgotten.

    The old definition took task 1's best over rows 1 and 2, and row 1 (0.9) was
    measured before task 1 was ever trained: it reported forgetting 0.15.
    """
    m = TransferMatrix([[0.1, 0.1, 0.1], [0.5, 0.9, 0.1], [0.6, 0.4, 0.1], [0.7, 0.6, 0.8]])
    assert m.bwt() == pytest.approx(((0.7 - 0.5) + (0.6 - 0.4)) / 2)  # +0.2
    assert m.average_forgetting() == pytest.approx(0.0)
    # Mammoth's forgetting (its rows start after task 0): max over rows from each task's training on.
    after = m.values[1:]
    mammoth = np.mean([after[j:, j].max() - after[-1, j] for j in range(2)])
    assert m.average_forgetting() == pytest.approx(mammoth)


def test_printed_table_and_csv_label_rows_alike(tmp_path):
    from sequoia.runs.files import write_run

    results = Results("sl.incremental", "naive", TransferMatrix(MATRIX))
    run_dir = write_run(results, {"seed": 0}, tmp_path)
    csv_labels = [line.split(",")[0] for line in (run_dir / "transfer_matrix.csv").read_text().splitlines()[1:]]
    printed = [line.split()[0] + (" " + line.split()[1] if line.split()[0] == "after" else "")
               for line in TransferMatrix(MATRIX).format().splitlines()[1:]]
    assert csv_labels == printed == ["before", "after 0", "after 1", "after 2"]


def test_every_matrix_is_summarised_by_its_final_average():
    r = Results("pa.incremental", "dpo_lora", TransferMatrix(MATRIX), matrices={"drift": [[0.0], [1.0], [3.0]]})
    assert r.metrics()["drift"] == 3.0
