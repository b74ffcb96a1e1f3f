-- Failed-login counts that never reached the lockout are forgotten after a quiet day
-- (`Store::forget_stale_login_failures`, by the last failure's time).
CREATE INDEX login_failures_updated ON login_failures (updated_at);
