"""REST: outbound campaigns. ``POST /v1/campaigns`` (JSON, or a CSV upload), progress and
per-contact outcomes, cancel.

Reads and writes go through ``app.state.campaigns`` (a ``voxgate.cluster.campaigns.Campaigns``
set at start-up when a records database is configured); without it every endpoint answers
503 rather than pretending. Any node can take a campaign: jobs go to the shared queue and
every node's worker dials them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from voxgate.api.auth import require_token
from voxgate.calls.router import NoRoute
from voxgate.cluster.campaigns import Campaigns, CampaignSpec, parse_contacts_csv

router = APIRouter(
    dependencies=[Depends(require_token)],
    tags=["campaigns"],
    responses={401: {"description": "Missing or invalid token"},
               503: {"description": "Campaigns are not enabled on this node"}},
)  # fmt: skip

CampaignId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
MAX_UPLOAD = 20 * 1024 * 1024


class Created(BaseModel):
    id: str
    contacts: int
    queued: int = Field(description="Contacts to dial (the rest are on the do-not-call list)")


class ContactOut(BaseModel):
    id: int
    phone: str
    name: str
    timezone: str
    variables: dict[str, Any]
    state: str = Field(description="pending, dialing or done")
    outcome: str | None = Field(description="answered, completed, voicemail, busy, no_answer, failed, dnc")
    result: dict[str, Any]
    attempts: int
    next_at: datetime | None
    last_call_id: str


class CampaignOut(BaseModel):
    id: str
    name: str
    app: str
    status: str = Field(description="running, completed or cancelled")
    total: int
    created_at: datetime
    finished_at: datetime | None
    spec: dict[str, Any]
    progress: dict[str, int] = Field(description="Counts by state and by final outcome, attempts")


class CampaignDetail(CampaignOut):
    contacts: list[ContactOut]


def _campaigns(request: Request) -> Campaigns:
    campaigns: Campaigns | None = getattr(request.app.state, "campaigns", None)
    if campaigns is None:
        raise HTTPException(503, "campaigns need a records database (records.database_url)")
    return campaigns


async def _spec_from(request: Request) -> CampaignSpec:
    """JSON body, or multipart with ``contacts`` (CSV file) and ``spec`` (JSON rules)."""
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=10)
            upload = form.get("contacts")
            if not isinstance(upload, UploadFile):
                raise HTTPException(422, "multipart needs a 'contacts' CSV file")
            raw = await upload.read(MAX_UPLOAD + 1)
            if len(raw) > MAX_UPLOAD:
                raise HTTPException(413, "contact list too large")
            rules = form.get("spec")
            base = json.loads(rules) if isinstance(rules, str) and rules else {}
            if not isinstance(base, dict):
                raise HTTPException(422, "'spec' must be a JSON object")
            contacts = parse_contacts_csv(raw.decode("utf-8-sig"))
            return CampaignSpec.model_validate({**base, "contacts": [c.model_dump() for c in contacts]})
        return CampaignSpec.model_validate_json(await request.body())
    except ValidationError as exc:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        raise HTTPException(422, {"error": "invalid campaign", "details": details[:50]}) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(422, {"error": "invalid campaign", "details": [{"msg": str(exc)[:500]}]}) from None


@router.post(
    "/v1/campaigns", response_model=Created, status_code=201,
    openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": {"type": "object", "description":
            "CampaignSpec: contacts [{phone, name, timezone, variables}], app, window, days, "
            "timezone, max_concurrent, cps, max_attempts, retry_backoff_s, backoff_factor, "
            "max_backoff_s, dnc, trunk, caller_id, amd, voicemail_message"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "contacts": {"type": "string", "format": "binary"},
            "spec": {"type": "string", "description": "JSON of the campaign rules"}}}},
    }, "required": True}},
)  # fmt: skip
async def create_campaign(request: Request) -> Created:
    """Start a campaign: contacts (JSON list or CSV upload) and the rules to call them by.
    The app must be one this node can run (422 otherwise)."""
    campaigns = _campaigns(request)
    spec = await _spec_from(request)
    try:  # refused now rather than hanging up on every contact who answers
        request.app.state.manager.router.check(spec.app)
    except NoRoute as exc:
        raise HTTPException(422, {"error": "invalid campaign",
                                  "details": [{"loc": ["app"], "msg": str(exc)}]}) from None  # fmt: skip
    cid = await campaigns.create(spec)
    progress = await campaigns.store.progress(cid)
    return Created(id=cid, contacts=len(spec.contacts), queued=len(spec.contacts) - progress["dnc"])


@router.get("/v1/campaigns", response_model=list[CampaignOut])
async def list_campaigns(request: Request) -> list[dict[str, Any]]:
    """Newest first, with progress counts."""
    campaigns = _campaigns(request)
    rows = await campaigns.store.list_campaigns()
    for row in rows:
        row["progress"] = await campaigns.store.progress(row["id"])
    return rows


@router.get("/v1/campaigns/{campaign_id}", response_model=CampaignDetail,
            responses={404: {"description": "No such campaign"}})  # fmt: skip
async def get_campaign(request: Request, campaign_id: CampaignId) -> dict[str, Any]:
    """Progress counts and every contact's state and outcome."""
    detail = await _campaigns(request).detail(campaign_id)
    if detail is None:
        raise HTTPException(404, "no such campaign")
    return detail


@router.post("/v1/campaigns/{campaign_id}/cancel", response_model=CampaignOut,
             responses={404: {"description": "No such campaign"},
                        409: {"description": "Campaign is not running"}})  # fmt: skip
async def cancel_campaign(request: Request, campaign_id: CampaignId) -> dict[str, Any]:
    """Stop dialing (calls in progress finish); contacts not reached stay ``pending``."""
    campaigns = _campaigns(request)
    if await campaigns.store.campaign(campaign_id) is None:
        raise HTTPException(404, "no such campaign")
    if not await campaigns.cancel(campaign_id):
        raise HTTPException(409, "campaign is not running")
    detail = await campaigns.detail(campaign_id)
    assert detail is not None
    return detail
