"""Review tests for capture files: each pins a bug found by reading the code against what
`hubble observe -o jsonpb` writes and what tools do to such files."""

from __future__ import annotations

import io

from observer_fixture import make_flow_response

from kcockpit.sources.capture import read_capture, response_to_line

# ----- capture files ------------------------------------------------------------------------------


def test_a_byte_order_mark_at_the_start_of_a_capture_is_not_a_malformed_line(tmp_path) -> None:
    # Editors and Windows tools save UTF-8 with a BOM; the first flow must not be lost to it.
    lines = [response_to_line(make_flow_response(i)) for i in range(2)]
    text = "\ufeff" + "\r\n".join(lines) + "\r\n"
    path = tmp_path / "bom.json"
    path.write_bytes(text.encode("utf-8"))
    for source in (path, io.StringIO(text)):
        result = read_capture(source)
        assert result.problems == []
        assert [r.uuid for r in result.records] == ["f-0", "f-1"]


def test_a_byte_order_mark_elsewhere_is_still_reported() -> None:
    line = response_to_line(make_flow_response(0))
    result = read_capture(io.StringIO(line + "\n\ufeff" + line + "\n"))
    assert len(result.records) == 1
    assert [p.line for p in result.problems] == [2]


def test_a_utf16_capture_from_powershell_redirection_is_read(tmp_path) -> None:
    # Windows PowerShell 5's `hubble observe -o jsonpb > flows.json` writes UTF-16 with a BOM.
    lines = [response_to_line(make_flow_response(i)) for i in range(3)]
    path = tmp_path / "ps.json"
    path.write_bytes("\r\n".join(lines).encode("utf-16"))  # BOM + UTF-16LE/BE (native order)
    result = read_capture(path)
    assert result.problems == []
    assert [r.uuid for r in result.records] == ["f-0", "f-1", "f-2"]


def test_a_capture_read_from_a_pipe_loses_no_bytes(tmp_path) -> None:
    import os
    import threading

    line = response_to_line(make_flow_response(0))
    fifo = tmp_path / "flows.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w", encoding="utf-8") as writer:
            writer.write(line + "\n")

    feeder = threading.Thread(target=feed)
    feeder.start()
    result = read_capture(fifo)
    feeder.join(5)
    assert result.problems == [] and [r.uuid for r in result.records] == ["f-0"]
