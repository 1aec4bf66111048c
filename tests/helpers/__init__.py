"""What the tests share that is not a fixture: building data, driving Twilio's side,
running the project or its services in processes of their own, and the browser.

Fixtures stay in ``tests/conftest.py``; they may use these."""
