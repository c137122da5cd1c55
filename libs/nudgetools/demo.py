"""The demo the README walks through: an app named `demo` with its keys, a segment of users
who performed `signup` and an active welcome campaign shown to them, created through the
public API like any operator's.

The demo shop page (clients/web/demo, served by nudgetools.demo_server) adds what a web page
needs: a key of the `public` scope, a key pair whose public half is registered as the app's
user token key (the private half stays in the data folder, for the shop's backend to sign
with), and three triggered campaigns on the shop's events, which all carry `source: "shop"`
so that nothing else sent to the demo app sets them off.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import json_format

from nudgelib import accounts, user_token_keys
from nudgelib.user_tokens import parse_public_key
from nudge.common.v1 import common_pb2
from nudge.decision.v1 import decision_service_pb2 as decision_pb
from nudge.decision.v1 import decision_service_pb2_grpc as decision_grpc
from nudge.segmentation.v1 import segmentation_service_pb2 as seg_pb
from nudge.segmentation.v1 import segmentation_service_pb2_grpc as seg_grpc

APP = "demo"
SEGMENT_KEY = "signed-up"
CAMPAIGN_KEY = "welcome"
# The label of the demo app's public key (the one the shop page ships with) in demo-keys.json.
PUBLIC_LABEL = "public"
# The `kid` of the shop backend's user token key, and the file its private half is kept in.
SHOP_KID = "demo-shop"
SHOP_KEY_FILE = "demo-user-token-key.pem"


async def app_keys(url: str, keys_file: Path) -> tuple[str, dict[str, str], bool]:
    """The demo app's id and keys, creating them on first run. Keys are kept in the local data
    folder so restarts print the same ones. Returns (app id, label -> key, created now)."""
    conn = await asyncpg.connect(url)
    try:
        app_id = await accounts.find_app(conn, APP)
        if app_id and keys_file.exists():
            saved = json.loads(keys_file.read_text())
            if saved.get("app_id") == app_id:
                if PUBLIC_LABEL not in saved["keys"]:  # a data folder from before the shop
                    key = await accounts.create_key(conn, app_id, PUBLIC_LABEL, (accounts.Scope.PUBLIC,))
                    saved["keys"][PUBLIC_LABEL] = key.secret
                    _write_keys(keys_file, app_id, saved["keys"])
                return app_id, saved["keys"], False
        created = app_id is None
        if created:
            app_id, issued = await accounts.create_app(conn, APP)
        else:
            issued = [await accounts.create_key(conn, app_id, label, scopes)
                      for label, scopes in accounts.DEFAULT_KEYS.items()]
        issued.append(await accounts.create_key(conn, app_id, PUBLIC_LABEL, (accounts.Scope.PUBLIC,)))
    finally:
        await conn.close()
    keys = {k.label: k.secret for k in issued}
    _write_keys(keys_file, app_id, keys)
    return app_id, keys, created


def _write_keys(keys_file: Path, app_id: str, keys: dict[str, str]) -> None:
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    keys_file.write_text(json.dumps({"app_id": app_id, "keys": keys}, indent=2))
    keys_file.chmod(0o600)


@dataclass(frozen=True)
class ShopSigner:
    """What the shop's backend signs user tokens with: the private key's file and its `kid`."""

    key_file: Path
    kid: str = SHOP_KID


async def shop_signer(url: str, app_id: str, data_dir: Path) -> tuple[ShopSigner, bool]:
    """The shop backend's signing key: made on first use (an EC P-256 key, kept in the data
    folder, readable by its owner only) and its public half registered as the app's user
    token key (again unchanged on later runs). Returns it, and whether it was registered now."""
    key_file = data_dir / SHOP_KEY_FILE
    if key_file.exists():
        private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    conn = await asyncpg.connect(url)
    try:
        _, registered = await user_token_keys.add_key(conn, app_id, parse_public_key(public_pem, SHOP_KID))
    finally:
        await conn.close()
    return ShopSigner(key_file), registered


def signup_segment() -> seg_pb.CreateSegmentRequest:
    return seg_pb.CreateSegmentRequest(
        name="Signed up",
        description="Users who performed signup at least once",
        rule=seg_pb.Rule(event=seg_pb.EventCondition(
            name="signup", operator=seg_pb.EVENT_OPERATOR_AT_LEAST, count=1)),
    )


def welcome_campaign(segment_id: str) -> decision_pb.Campaign:
    return decision_pb.Campaign(
        name="Welcome",
        tags=["onboarding"],
        priority=10,
        status=decision_pb.CAMPAIGN_STATUS_ACTIVE,
        delivery_mode=decision_pb.DELIVERY_MODE_ON_REQUEST,
        audience=decision_pb.Audience(include_segment_ids=[segment_id]),
        variants=[decision_pb.Variant(
            id="A", name="Welcome modal", weight=1, default_locale="en",
            contents=[decision_pb.LocalizedContent(locale="en", content=common_pb2.MessageContent(
                layout=common_pb2.LAYOUT_MODAL,
                title="Welcome to Nudge!",
                body="Thanks for signing up. Take the tour?",
                buttons=[
                    common_pb2.Button(id="tour", text="Take the tour",
                                      action=common_pb2.BUTTON_ACTION_TYPE_DEEP_LINK, target="app://tour"),
                    common_pb2.Button(id="later", text="Later", action=common_pb2.BUTTON_ACTION_TYPE_DISMISS),
                ],
            ))],
        )],
    )


async def seed(segmentation_target: str, decision_target: str, admin_key: str,
               credentials: grpc.ChannelCredentials | None = None) -> tuple[str, str]:
    """Creates the demo segment and campaign (with `credentials`, over TLS); returns their ids."""
    metadata = (("authorization", f"Bearer {admin_key}"),)

    def channel(target: str) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)

    async with channel(segmentation_target) as seg_channel, channel(decision_target) as dec_channel:
        # With keys, so `nudge export` writes them and `nudge apply` of that finds them again.
        request = signup_segment()
        request.key = SEGMENT_KEY
        segment = (await seg_grpc.SegmentationServiceStub(seg_channel).CreateSegment(
            request, metadata=metadata, timeout=10)).segment
        campaign = welcome_campaign(segment.id)
        campaign.key = CAMPAIGN_KEY
        campaign = (await decision_grpc.DecisionServiceStub(dec_channel).CreateCampaign(
            decision_pb.CreateCampaignRequest(campaign=campaign), metadata=metadata, timeout=10)).campaign
    return segment.id, campaign.id


def _from_shop(*filters: dict) -> list[dict]:
    """Property filters: the event came from the shop page, and `filters`."""
    return [{"name": "source", "operator": "PROPERTY_OPERATOR_EQUALS", "value": "shop"}, *filters]


def _campaign(spec: dict) -> decision_pb.Campaign:
    return json_format.ParseDict(spec, decision_pb.Campaign())


def shop_campaigns() -> list[decision_pb.Campaign]:
    """The demo shop's campaigns, keyed so that they are created once."""
    later = {"id": "later", "text": "Later", "action": "BUTTON_ACTION_TYPE_DISMISS"}
    return [_campaign(spec) for spec in (
        {
            "key": "shop-welcome", "name": "Shop: welcome", "tags": ["shop", "onboarding"], "priority": 20,
            "status": "CAMPAIGN_STATUS_ACTIVE", "deliveryMode": "DELIVERY_MODE_TRIGGERED",
            "triggers": [{"eventName": "signup", "propertyFilters": _from_shop()}],
            "caps": {"lifetimeMax": 1},
            "messageTtl": "3600s",
            "variants": [{"id": "A", "name": "Welcome modal", "weight": 1, "defaultLocale": "en", "contents": [{
                "locale": "en", "content": {
                    "layout": "LAYOUT_MODAL",
                    "title": "Welcome, {{ event.first_name | default: 'friend' }}!",
                    "body": "Thanks for signing up. Everything in the shop ships free this week.",
                    "buttons": [{"id": "shop", "text": "Start shopping", "action": "BUTTON_ACTION_TYPE_DEEP_LINK",
                                 "target": "app://shop"}, later],
                }}]}],
        },
        {
            "key": "shop-abandoned-cart", "name": "Shop: abandoned cart", "tags": ["shop", "commerce"],
            "priority": 10, "status": "CAMPAIGN_STATUS_ACTIVE", "deliveryMode": "DELIVERY_MODE_TRIGGERED",
            # A few seconds, for a demo (a real shop waits half an hour: examples/abandoned-cart.yaml).
            "triggers": [{"eventName": "cart_abandoned", "delay": "5s",
                          "propertyFilters": _from_shop({"name": "cart_value", "operator": "PROPERTY_OPERATOR_GREATER",
                                                         "value": 0}),
                          "exceptionEvents": [{"eventName": "purchase"}]}],
            "messageTtl": "86400s",
            "conversion": {"eventNames": ["purchase"], "deadline": "86400s"},
            "variants": [{"id": "A", "name": "Reminder", "weight": 1, "defaultLocale": "en", "contents": [{
                "locale": "en", "content": {
                    "layout": "LAYOUT_MODAL",
                    "title": "You left something behind",
                    "body": "Your cart of {{ event.cart_value }} is waiting, {{ user.first_name | default: 'friend' }}.",
                    "buttons": [{"id": "cart", "text": "Back to my cart", "action": "BUTTON_ACTION_TYPE_DEEP_LINK",
                                 "target": "app://cart"}, later],
                }}]}],
        },
        {
            "key": "shop-checkout-survey", "name": "Shop: checkout survey", "tags": ["shop", "research"],
            "priority": 5, "status": "CAMPAIGN_STATUS_ACTIVE", "deliveryMode": "DELIVERY_MODE_TRIGGERED",
            "triggers": [{"eventName": "purchase", "propertyFilters": _from_shop()}],
            "caps": {"lifetimeMax": 1},
            "messageTtl": "3600s",
            "variants": [{"id": "A", "name": "Two questions", "weight": 1, "defaultLocale": "en", "contents": [{
                "locale": "en", "content": {
                    "layout": "LAYOUT_SURVEY",
                    "title": "Thanks for your order!",
                    "body": "Two quick questions about checking out.",
                    "questions": [
                        {"id": "ease", "text": "How easy was checking out?", "type": "QUESTION_TYPE_RATING",
                         "maxRating": 5},
                        {"id": "found", "text": "How did you find us?", "type": "QUESTION_TYPE_SINGLE_CHOICE",
                         "choices": ["A friend", "A search", "An advert"]},
                    ],
                    # The SDK draws the survey's own submit button; this one closes it unanswered.
                    "buttons": [{"id": "skip", "text": "No thanks", "action": "BUTTON_ACTION_TYPE_DISMISS"}],
                }}]}],
        },
    )]


async def seed_shop(decision_target: str, admin_key: str,
                    credentials: grpc.ChannelCredentials | None = None) -> dict[str, str]:
    """Creates the shop's campaigns that the app does not have yet (by key; with
    `credentials`, over TLS); returns every shop campaign's id by key."""
    metadata = (("authorization", f"Bearer {admin_key}"),)
    ids = {}
    channel = (grpc.aio.secure_channel(decision_target, credentials) if credentials
               else grpc.aio.insecure_channel(decision_target))
    async with channel:
        stub = decision_grpc.DecisionServiceStub(channel)
        for campaign in shop_campaigns():
            try:
                found = await stub.GetCampaign(decision_pb.GetCampaignRequest(key=campaign.key),
                                               metadata=metadata, timeout=10)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                found = await stub.CreateCampaign(decision_pb.CreateCampaignRequest(campaign=campaign),
                                                  metadata=metadata, timeout=10)
            ids[campaign.key] = found.campaign.id
    return ids
