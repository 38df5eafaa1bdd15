// Vitest setup: DOM matchers, and cleanup between tests (globals are on, so RTL registers it).
import '@testing-library/jest-dom/vitest';
