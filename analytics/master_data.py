"""Releasing a design's passport master data: a new version supersedes the released one.

Checked here so that every released version can fill a passport the Battery Pass data model 1.2.0
accepts: identifiers and codes in the form the schemas demand, and a substance for every role of
the design's bill of materials.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from analytics.models import PassportMasterData
from audit.services import record_event
from batches.models import DesignMaterial, MaterialRole
from core.errors import DomainError
from lines.models import CellDesign

CAS = re.compile(r"^\d{2,7}-\d{2}-\d$")
NAMESPACE = re.compile(r"^[a-z0-9]+$")
G_MONTH = re.compile(r"^--(0[1-9]|1[0-2])$")
LIFECYCLE_STAGES = ("RawMaterialExtraction", "MainProduction", "Distribution", "Recycling")
HAZARD_CLASSES = ("AcuteToxicity", "SkinCorrosionOrIrritation", "EyeDamageOrIrritation")
ROLES = {choice.value for choice in MaterialRole}

# The scalar fields a version carries, copied as given (the model's field types check them).
FIELDS = [
    field.name
    for field in PassportMasterData._meta.concrete_fields
    if field.name not in {"id", "design", "version", "status", "note", "released_at", "released_by"}
]


def released_for(design: CellDesign) -> PassportMasterData | None:
    return PassportMasterData.objects.filter(
        design=design, status=PassportMasterData.Status.RELEASED
    ).first()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check(design: CellDesign, data: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with `data` for `design`, by field (empty when nothing is)."""
    errors: dict[str, list[str]] = {}

    def wrong(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    missing = [f for f in FIELDS if f not in data]
    for field in missing:
        wrong(field, "This field is required.")
    if missing:
        return errors
    if not NAMESPACE.match(str(data["passport_namespace"])):
        wrong("passport_namespace", "Lower-case letters and digits only.")
    if not G_MONTH.match(str(data["warranty_period"])):
        wrong("warranty_period", "The data model's gMonth form, --01 to --12.")
    idle = data["temperature_range_idle_state_c"]
    if not _number(idle) or not -20 <= idle <= 60:
        wrong("temperature_range_idle_state_c", "A number between -20 and 60 degC.")
    slope = data["ocv_slope_mv_per_pct_soc"]
    if not _number(slope) or slope <= 0:
        wrong("ocv_slope_mv_per_pct_soc", "A positive number.")

    materials = data["materials"]
    if not isinstance(materials, list) or not all(isinstance(m, dict) for m in materials):
        wrong("materials", "A list of materials.")
        materials = []
    for i, material in enumerate(materials):
        if material.get("role") not in ROLES:
            wrong("materials", f"#{i + 1}: role must be one of {sorted(ROLES)}.")
        if not str(material.get("name", "")).strip():
            wrong("materials", f"#{i + 1}: a name is required.")
        if not CAS.match(str(material.get("cas", ""))):
            wrong("materials", f"#{i + 1}: cas must be a CAS number (e.g. 7439-93-2).")
        if not _number(material.get("mass_g")) or material["mass_g"] <= 0:
            wrong("materials", f"#{i + 1}: mass_g must be a positive number.")
        if not isinstance(material.get("critical_raw_material"), bool):
            wrong("materials", f"#{i + 1}: critical_raw_material must be true or false.")
    bom = set(DesignMaterial.objects.filter(design=design).values_list("role", flat=True))
    uncovered = bom - {m.get("role") for m in materials}
    if uncovered:
        wrong("materials", f"No substance for the design's {', '.join(sorted(uncovered))}.")

    substances = data["hazardous_substances"]
    if not isinstance(substances, list) or not all(isinstance(h, dict) for h in substances):
        wrong("hazardous_substances", "A list of substances.")
        substances = []
    for i, substance in enumerate(substances):
        if substance.get("role") not in ROLES:
            wrong("hazardous_substances", f"#{i + 1}: role must be one of {sorted(ROLES)}.")
        if not str(substance.get("name", "")).strip():
            wrong("hazardous_substances", f"#{i + 1}: a name is required.")
        if not CAS.match(str(substance.get("cas", ""))):
            wrong("hazardous_substances", f"#{i + 1}: cas must be a CAS number.")
        if substance.get("hazard_class") not in HAZARD_CLASSES:
            wrong("hazardous_substances", f"#{i + 1}: hazard_class one of {HAZARD_CLASSES}.")
        if not _number(substance.get("concentration_pct")):
            wrong("hazardous_substances", f"#{i + 1}: concentration_pct must be a number.")
        impacts = substance.get("impacts")
        if not isinstance(impacts, list) or not all(isinstance(x, str) for x in impacts):
            wrong("hazardous_substances", f"#{i + 1}: impacts must be a list of texts.")

    stages = data["carbon_footprint_stages"]
    if not isinstance(stages, dict) or not stages:
        wrong("carbon_footprint_stages", "A figure per lifecycle stage.")
    else:
        for stage, value in stages.items():
            if stage not in LIFECYCLE_STAGES:
                wrong("carbon_footprint_stages", f"{stage}: one of {LIFECYCLE_STAGES}.")
            if not _number(value):
                wrong("carbon_footprint_stages", f"{stage}: must be a number.")

    points = data["original_power_capability"]
    if not isinstance(points, list) or not all(
        isinstance(p, dict) and _number(p.get("soc_pct")) and _number(p.get("power_w"))
        for p in points
    ):
        wrong("original_power_capability", 'A list of {"soc_pct", "power_w"}.')
    return errors


@transaction.atomic
def release_master_data(
    design: CellDesign, data: dict[str, Any], *, by: AbstractBaseUser | str, note: str
) -> PassportMasterData:
    """Release a new version of `design`'s master data; the released one is superseded."""
    if not note or not note.strip():
        raise DomainError("reason_required", _("Say what changed and why."), status=400)
    # Serialise releases per design: two at once would both read the same current version.
    CellDesign.objects.select_for_update().get(pk=design.pk)
    errors = check(design, data)
    if errors:
        raise DomainError("invalid", _("The master data is not valid."), status=400, errors=errors)
    previous = released_for(design)
    if previous is not None:
        previous.status = PassportMasterData.Status.SUPERSEDED
        previous.save(update_fields=["status"])
    number = (
        PassportMasterData.objects.filter(design=design).aggregate(n=Max("version"))["n"] or 0
    ) + 1
    version = PassportMasterData(
        design=design,
        version=number,
        note=note.strip(),
        released_at=timezone.now(),
        released_by=by if isinstance(by, AbstractBaseUser) else None,
        **{field: data[field] for field in FIELDS},
    )
    try:
        version.full_clean(exclude=["design", "released_by"])
    except ValidationError as invalid:
        raise DomainError(
            "invalid", _("The master data is not valid."), status=400, errors=invalid.message_dict
        ) from None
    version.save()
    record_event(
        actor=by,
        verb="passport_master_data_released",
        subject_type="design",
        subject=design.code,
        reason=note.strip(),
        data={"version": number, "superseded": previous.version if previous else None},
    )
    return version


def as_data(version: PassportMasterData) -> dict[str, Any]:
    """A version's fields as release_master_data takes them (the start of the next version)."""
    return {field: getattr(version, field) for field in FIELDS}
