-- The connection a session was signed in with: the user's own, or the upstream connection
-- of a linked identity (post-login Actions see it as `event.connection`). Sessions from
-- before have none and mean the user's own.
ALTER TABLE sessions ADD COLUMN connection TEXT COLLATE "C";
