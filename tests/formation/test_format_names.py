"""One vocabulary of format names: every name an upload may send resolves to a reader, and each
reader reads its own format when named."""

from __future__ import annotations

from datetime import datetime

import pytest

from formation.cycler import (
    FORMAT_ALIASES,
    FORMAT_NAMES,
    FORMATS,
    CyclerFileRejected,
    format_named,
    read_cycler_file,
)
from stations.api.serializers import CyclerFileSerializer

from . import synthetic, vendor_files
from .samples import SAMPLES

START = datetime(2024, 3, 14, 9, 15, 2)  # noqa: DTZ001  a cycler's local clock


def test_the_upload_offers_exactly_the_readers_names():
    offered = set(CyclerFileSerializer().fields["format"].choices)
    assert offered == set(FORMAT_NAMES) == set(FORMATS) | set(FORMAT_ALIASES)
    for name in offered:
        assert format_named(name) in FORMATS
    assert format_named("excel") is None


def write(fmt: str, tmp_path):
    curve = synthetic.build(synthetic.FORMATION)
    columns = vendor_files.mpr_columns(curve, synthetic.FORMATION)
    if fmt == "biologic_mpr":
        ids = vendor_files.MPR_VARIANTS["mb_cccv_with_i"]
        return vendor_files.write_mpr(columns, ids, tmp_path / "f.mpr", START)
    if fmt == "biologic_mpt":
        return vendor_files.write_mpt(columns, ["time/s", "Ewe/V", "I/mA"], tmp_path / "f.mpt",
                                      START)  # fmt: skip
    if fmt == "arbin_csv":
        return vendor_files.write_arbin_csv(curve, tmp_path / "f.csv", START)
    if fmt == "arbin_xlsx":
        return vendor_files.write_arbin_xlsx(curve, tmp_path / "f.xlsx", START)
    if fmt == "maccor_txt":
        return vendor_files.write_maccor(curve, tmp_path / "f.001", START)
    if fmt == "csv":
        return synthetic.write_csv(curve, tmp_path / "f.csv")
    if fmt == "neware_ndax":
        if not (SAMPLES / "neware_cccv.ndax").exists():
            pytest.skip(f"sample data not found at {SAMPLES}")
        return SAMPLES / "neware_cccv.ndax"
    raise AssertionError(fmt)


@pytest.mark.parametrize("name", sorted(set(FORMAT_NAMES) - {"neware_nda", "nda"}))
def test_every_name_reads_its_format(tmp_path, name):
    fmt = format_named(name)
    path = write(fmt, tmp_path)
    data = read_cycler_file(path, format=fmt)
    assert data.format == fmt and data.rows > 0
    assert read_cycler_file(path).format == fmt  # and detection agrees


@pytest.mark.parametrize("name", ["neware_nda", "nda"])
def test_a_legacy_nda_goes_to_the_neware_reader(tmp_path, name):
    # No public .nda sample may be redistributed here: a file with the NEWARE signature and a
    # body fastnda cannot parse shows the name reaches fastnda, which names what is wrong.
    path = tmp_path / "cell.nda"
    path.write_bytes(b"NEWARE" + bytes(8) + b"\x63" + bytes(2000))
    with pytest.raises(CyclerFileRejected) as caught:
        read_cycler_file(path, format=format_named(name))
    assert caught.value.check in ("unreadable", "truncated")
    assert "fastnda" in caught.value.detail and "cell.nda" in caught.value.detail
    renamed = tmp_path / "cell.bin"
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(CyclerFileRejected) as detected:
        read_cycler_file(renamed)
    assert "fastnda" in detected.value.detail  # detected by its signature, not its name
