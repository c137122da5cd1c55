import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { InAppMessageSchema, type InAppMessage } from "../src/gen/nudge/delivery/v1/delivery_service_pb.js";
import { ButtonActionType, Layout, QuestionType } from "../src/gen/nudge/common/v1/common_pb.js";

let n = 0;

/** A message as delivery would hand it out, with an hour to live unless told otherwise. */
// Loosely typed on purpose: tests write content as plain objects, as a campaign would.
export function message(content: Record<string, any> = {}, extra: Record<string, any> = {}): InAppMessage {
  n += 1;
  return create(InAppMessageSchema, {
    messageId: `m-${n}`,
    campaignId: "c-welcome",
    campaignVersion: 1,
    variantId: "a",
    locale: "en",
    expireTime: timestampFromDate(new Date(Date.now() + 3_600_000)),
    content: { layout: Layout.MODAL, title: "Welcome", body: "Glad you are here", ...content },
    ...extra,
  } as any);
}

export const buttons = {
  ok: { id: "ok", text: "OK", action: ButtonActionType.DISMISS },
  shop: { id: "shop", text: "Shop now", action: ButtonActionType.URL, target: "https://shop.example/sale" },
  next: { id: "next", text: "Next", action: ButtonActionType.NEXT },
};

export const surveyContent = {
  layout: Layout.SURVEY,
  title: "Quick question",
  questions: [
    { id: "q1", text: "How did you find us?", type: QuestionType.SINGLE_CHOICE, choices: ["Search", "Friend"] },
    { id: "q2", text: "What do you use?", type: QuestionType.MULTIPLE_CHOICE, choices: ["Web", "iOS", "Android"] },
    { id: "q3", text: "How likely are you to recommend us?", type: QuestionType.RATING, maxRating: 10 },
    { id: "q4", text: "Anything else?", type: QuestionType.FREE_TEXT },
  ],
};
