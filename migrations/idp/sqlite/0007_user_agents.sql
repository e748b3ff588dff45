-- The User-Agent (sanitised, at most 200 characters) beside the parsed device
-- description, shown when the parser does not know the agent.
ALTER TABLE user_sessions ADD COLUMN user_agent TEXT;
ALTER TABLE audit_events ADD COLUMN user_agent TEXT;
