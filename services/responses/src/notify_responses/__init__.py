"""The responses service: parents answer invitations; answers go to the school as meeting.rsvp events."""
