-- When a consumed code was presented again by its client. The winner of a redemption race
-- checks it after storing its tokens, so a replay that arrived before those tokens existed
-- still revokes them.
ALTER TABLE authorization_codes ADD COLUMN replayed_at BIGINT;
