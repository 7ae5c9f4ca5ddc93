# tests/e2e/hostile.mk - the hardening suites against a real started system: hostile clients (test_hostile.py)
# and SIGKILL during mixed load (test_crash.py).
E2E_TESTS += tests/e2e/test_hostile.py
E2E_TESTS += tests/e2e/test_crash.py
