E2E_TESTS += tests/e2e/test_directory.py
E2E_TESTS += tests/e2e/test_attendant.py
E2E_TESTS += tests/e2e/test_settings_live.py
E2E_TESTS += tests/e2e/test_clients.py
