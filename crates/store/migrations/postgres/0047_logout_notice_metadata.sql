-- The ended session's metadata, copied when its notices are queued (the session row goes
-- in the same transaction): a logout token carries it when its application asks
-- (`oidc_logout.backchannel_logout_session_metadata`). NULL: none.
ALTER TABLE logout_notices ADD COLUMN session_metadata TEXT;
