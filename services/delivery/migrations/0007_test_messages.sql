-- Test sends (DecisionService.SendTestMessage): shown like any message, counted nowhere.
ALTER TABLE messages ADD COLUMN test boolean NOT NULL DEFAULT false;
