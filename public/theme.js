// Applies the saved light/dark choice before the page paints (no flash of the other theme).
// Without a saved choice the stylesheet follows the system setting.
(() => {
  try {
    const saved = JSON.parse(localStorage.getItem('theme'));
    if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;
  } catch (_) {
    // No storage (private mode): follow the system.
  }
})();
