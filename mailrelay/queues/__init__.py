"""The editors' two queues, quarantine and review: requests, what a poll does with them, and the commands."""
