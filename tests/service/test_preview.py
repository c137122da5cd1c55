"""PreviewMessage: every layout of a campaign renders for a user (their context from
segmentation) or for attributes and event properties given in the call, through the code
delivery renders with; a template that fails is reported at its field and the rest still
renders; nothing is counted."""

from __future__ import annotations

import grpc
from google.protobuf import struct_pb2

from nudge.common.v1 import common_pb2 as c
from nudge.decision.v1 import decision_service_pb2 as pb
from nudge.delivery.v1 import delivery_service_pb2 as delivery_pb
from nudge.ingestion.v1 import ingestion_service_pb2 as ingestion_pb
from tests.conftest import eventually
from tests.helpers import Clients, create_app, create_campaign, expect_error, make_campaign, user_profile, violated_fields

NAME = "{{ user.first_name | default: 'there' }}"
CART = "{{ event.cart_value | default: 0 }}"


def layouts() -> dict[str, c.MessageContent]:
    """One content per layout MessageContent has, each with templates in its own fields."""
    button = c.Button(id="go", text="Go, " + NAME, action=c.BUTTON_ACTION_TYPE_URL, target="https://x.test/{{ user.id }}")
    return {
        "banner": c.MessageContent(layout=c.LAYOUT_BANNER, title="Hi " + NAME, body="Cart " + CART),
        "modal": c.MessageContent(layout=c.LAYOUT_MODAL, title="Hello " + NAME, buttons=[button]),
        "full_screen": c.MessageContent(layout=c.LAYOUT_FULL_SCREEN, body="Welcome " + NAME,
                                        image_url="https://img.test/{{ user.plan }}.png"),
        "card": c.MessageContent(layout=c.LAYOUT_CARD, title="Card for " + NAME,
                                 custom_data=struct_pb2.Struct(fields={"note": struct_pb2.Value(
                                     string_value="cart={{ event.cart_value }}")})),
        "carousel": c.MessageContent(layout=c.LAYOUT_CAROUSEL, slides=[
            c.Slide(title="One " + NAME), c.Slide(title="Two", body="Cart " + CART, buttons=[button])]),
        "survey": c.MessageContent(layout=c.LAYOUT_SURVEY, title="A question, " + NAME, questions=[
            c.SurveyQuestion(id="q1", text="How likely, " + NAME + "?", type=c.QUESTION_TYPE_RATING, max_rating=10)]),
        "tour_step": c.MessageContent(layout=c.LAYOUT_TOOLTIP, body="Step 1 for " + NAME,
                                      anchor=c.Anchor(screen="home", element_id="search", step=1)),
    }


def every_layout_campaign() -> pb.Campaign:
    campaign = make_campaign("Every layout")
    del campaign.variants[:]
    for name, content in layouts().items():
        campaign.variants.add(id=name, weight=1, default_locale="en",
                              contents=[pb.LocalizedContent(locale="en", content=content)])
    campaign.variants[0].contents.add(locale="fr", content=c.MessageContent(
        layout=c.LAYOUT_BANNER, title="Salut " + NAME))
    return campaign


async def preview(api, app, **fields) -> pb.PreviewMessageResponse:
    return await api.decision.PreviewMessage(pb.PreviewMessageRequest(**fields), metadata=app.auth("admin"))


async def test_every_layout_renders_for_a_user_and_for_given_attributes(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, every_layout_campaign())
    await api.ingestion.Identify(ingestion_pb.IdentifyRequest(user_id="ann", locale="fr-FR", attributes={
        "first_name": c.AttributeValue(string_value="Ann"), "plan": c.AttributeValue(string_value="gold")}),
        metadata=app.auth("events"))
    await eventually(lambda: user_profile(api, app, "ann"))
    cart = struct_pb2.Struct()
    cart.update({"cart_value": 120})

    got = {v.id: await preview(api, app, campaign_id=campaign.id, variant_id=v.id, user_id="ann",
                               locale="en", event_properties=cart) for v in campaign.variants}
    assert all(not r.errors and r.locale == "en" and r.campaign_version == 1 for r in got.values())
    assert {k: r.content.layout for k, r in got.items()} == {k: v.layout for k, v in layouts().items()}
    assert (got["banner"].content.title, got["banner"].content.body) == ("Hi Ann", "Cart 120")
    modal = got["modal"].content
    assert (modal.title, modal.buttons[0].text, modal.buttons[0].target) == (
        "Hello Ann", "Go, Ann", "https://x.test/ann")
    assert got["full_screen"].content.image_url == "https://img.test/gold.png"
    assert got["card"].content.custom_data["note"] == "cart=120"
    slides = got["carousel"].content.slides
    assert (slides[0].title, slides[1].body, slides[1].buttons[0].text) == ("One Ann", "Cart 120", "Go, Ann")
    assert got["survey"].content.questions[0].text == "How likely, Ann?"
    tour = got["tour_step"].content
    assert (tour.body, tour.anchor.element_id, tour.anchor.step) == ("Step 1 for Ann", "search", 1)

    # Without a locale asked, the user's (fr-FR) picks the French content, as a pull would.
    fr = await preview(api, app, campaign_id=campaign.id, user_id="ann")
    assert (fr.variant_id, fr.locale, fr.content.title) == ("banner", "fr", "Salut Ann")
    # Attributes given in the call, over the user's own or with no user at all.
    over = await preview(api, app, campaign_id=campaign.id, variant_id="modal", user_id="ann",
                         attributes={"first_name": c.AttributeValue(string_value="Annie")})
    assert over.content.title == "Hello Annie" and over.user.attributes["plan"].string_value == "gold"
    nobody = await preview(api, app, campaign_id=campaign.id, variant_id="banner",
                           attributes={"first_name": c.AttributeValue(string_value="Zoe")})
    assert (nobody.content.title, nobody.content.body) == ("Hi Zoe", "Cart 0")
    # An unknown user renders with the defaults.
    stranger = await preview(api, app, campaign_id=campaign.id, variant_id="banner", user_id="stranger")
    assert stranger.content.title == "Hi there" and not stranger.user.known

    # A preview counts nothing.
    stats = await api.delivery.GetCampaignStats(delivery_pb.GetCampaignStatsRequest(campaign_id=campaign.id),
                                                metadata=app.auth("admin"))
    assert all(v.sent == 0 for v in stats.variants)


async def test_a_template_error_is_reported_at_its_field_and_the_rest_renders(stack, database_url):
    app = await create_app(database_url)
    api = Clients(stack.channel)
    campaign = make_campaign("Loops")
    content = campaign.variants[0].contents[0].content
    content.title = "Hi " + NAME
    content.buttons[1].text = "{% for i in (1..event.rounds) %}*{% endfor %}"
    content.custom_data.update({"deep": {"long": "{% for i in (1..event.n) %}0123456789abcdefghij{% endfor %}"}})
    campaign = await create_campaign(api, app, campaign)
    few, many = struct_pb2.Struct(), struct_pb2.Struct()
    few.update({"rounds": 3, "n": 1})
    many.update({"rounds": 100000, "n": 900})

    fine = await preview(api, app, campaign_id=campaign.id, event_properties=few)
    assert not fine.errors and fine.content.buttons[1].text == "***"
    assert fine.content.custom_data["deep"]["long"] == "0123456789abcdefghij"

    broken = await preview(api, app, campaign_id=campaign.id, event_properties=many,
                           attributes={"first_name": c.AttributeValue(string_value="Bo")})
    assert [e.field for e in broken.errors] == ["buttons[1].text", "custom_data.deep.long"]
    assert "loop iteration limit" in broken.errors[0].message
    assert "output stream limit" in broken.errors[1].message
    assert broken.content.title == "Hi Bo"
    assert broken.content.buttons[1].text == content.buttons[1].text  # kept as written


async def test_bad_preview_requests_name_their_field(stack, database_url):
    app, other = await create_app(database_url), await create_app(database_url)
    api = Clients(stack.channel)
    campaign = await create_campaign(api, app, make_campaign())
    exc = await expect_error(preview(api, app, campaign_id=""), grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"campaign_id"}
    exc = await expect_error(preview(api, app, campaign_id=campaign.id, user_id="u" * 257, locale="x" * 65),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"user_id", "locale"}
    exc = await expect_error(preview(api, app, campaign_id=campaign.id, variant_id="nope"),
                             grpc.StatusCode.INVALID_ARGUMENT)
    assert violated_fields(exc) == {"variant_id"}
    await expect_error(preview(api, app, campaign_id=campaign.id, version=9), grpc.StatusCode.NOT_FOUND)
    await expect_error(preview(api, other, campaign_id=campaign.id), grpc.StatusCode.NOT_FOUND)
