-- Why a message ended without reaching the user: for status 'dropped', the name of a
-- nudge.decision.v1.DropReason without its prefix (CAPPED, RENDER_FAILED, ...). Rows dropped
-- before this column existed count as OTHER. Status 'expired' marks a triggered send whose
-- time-to-live passed before decision could release it; a 'pending' row past its expiry is
-- expired too, without being rewritten.
ALTER TABLE messages ADD COLUMN drop_reason text NOT NULL DEFAULT '';

-- Survey answers of a campaign, read in answer order (ListSurveyAnswers).
CREATE INDEX interactions_survey_idx ON interactions (app_id, occurred_at, message_id)
    WHERE type = 4;
