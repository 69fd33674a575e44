from __future__ import annotations

import pytest
from helpers import REAL_DATA

from eventvision.errors import FormatError
from eventvision.io import read_labels_csv, read_trials, write_labels_csv, write_trials


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_labels_round_trip(tmp_path, line_end):
    rows = [(3, 100, 200), (1, 300, 450)]
    path = tmp_path / "user01_lab_labels.csv"
    write_labels_csv(path, rows, line_end=line_end)
    assert path.read_bytes().startswith(b"class,startTime_usec,endTime_usec" + line_end.encode())
    assert read_labels_csv(path).tolist() == rows


def test_single_row(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("class,startTime_usec,endTime_usec\n5,1,2\n")
    assert read_labels_csv(path).tolist() == [(5, 1, 2)]


def test_real_labels_csv():
    path = REAL_DATA / "dvs128-gesture" / "user01_natural_labels.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    rows = read_labels_csv(path)
    assert rows["label"].tolist() == [1, 2, 3, 5, 4, 6, 7, 8, 8, 9, 10, 11]
    assert (rows["start"][0], rows["end"][-1]) == (53036986, 177991967)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1 is 'an empty file'"),
        ("a,b,c\n1,2,3\n", "expected the header"),
        ("class,startTime_usec,endTime_usec\n", "no label rows"),
        ("class,startTime_usec,endTime_usec\n1,2\n", "line 2 is '1,2'"),
        ("class,startTime_usec,endTime_usec\n1,20,10\n", "line 2 has start 20 us, end 10 us"),
    ],
)
def test_bad_labels(tmp_path, text, message):
    path = tmp_path / "l.csv"
    path.write_text(text)
    with pytest.raises(FormatError, match=message):
        read_labels_csv(path)


def test_trials_round_trip_and_bad_names(tmp_path):
    path = tmp_path / "trials_to_train.txt"
    write_trials(path, ["user01_lab.aedat", "user02_led.aedat"], line_end="\r\n")
    assert read_trials(path) == ["user01_lab.aedat", "user02_led.aedat"]
    path.write_text("user01_lab.aedat\nnotes.txt\n")
    with pytest.raises(FormatError, match="'notes.txt' is not an .aedat file name"):
        read_trials(path)
