-- Push-notification enrollment: the device enrolls with a ticket (Guardian's
-- enrollment_tx_id) that finds the pending enrollment, stored as its SHA-256
-- digest. Spending the ticket clears it, in the statement that writes the
-- device into the enrollment's state: a ticket enrolls one device.
ALTER TABLE enrollments ADD COLUMN ticket_digest TEXT;
CREATE UNIQUE INDEX enrollments_ticket ON enrollments (ticket_digest);
