// Telling the person what happened: the status line, the error alert, and
// the modal dialog that asks before a change (or for a name).

import { $ } from './dom.js';

export const say = (...parts) => $('status').replaceChildren(...parts);
// Sets a message element's text; no text hides it.
export function tell(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}
export const showError = (err) => { tell($('error-text'), err.message || String(err)); $('error').hidden = false; };
export const clearError = () => { $('error').hidden = true; };
// Runs an action from a button: errors go to the alert region.
export async function attempt(action) {
  try {
    await action();
  } catch (err) {
    if (err.status !== 401) showError(err);
  }
}

// A modal dialog. With `label`, asks for a value; `action(value)` runs on
// OK, and if it throws, its message shows in the dialog, which stays open.
export function ask({ title, text, label, value, ok, danger, action }) {
  const [dialog, form, input, error, okButton] = ['dialog', 'dialog-form', 'dialog-input', 'dialog-error', 'dialog-ok'].map($);
  $('dialog-title').textContent = title;
  tell($('dialog-text'), text);
  $('dialog-field').hidden = !label;
  $('dialog-label').textContent = label || '';
  input.value = value || '';
  okButton.textContent = ok || 'OK';
  okButton.classList.toggle('danger', !!danger);
  tell(error, '');
  return new Promise((resolve) => {
    const finish = (result) => {
      form.onsubmit = null;
      $('dialog-cancel').onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(result);
    };
    form.onsubmit = async (event) => {
      event.preventDefault();
      const v = input.value.trim();
      if (label && !v) return tell(error, 'Enter a name.');
      okButton.disabled = true;
      try {
        if (action) await action(v);
        finish(label ? v : true);
      } catch (err) {
        tell(error, err.message);
      } finally {
        okButton.disabled = false;
      }
    };
    $('dialog-cancel').onclick = () => finish(null);
    dialog.onclose = () => finish(null);
    dialog.showModal();
    if (label) {
      input.focus();
      // Select the name without its extension, as file managers do.
      const dot = input.value.lastIndexOf('.');
      input.setSelectionRange(0, dot > 0 ? dot : input.value.length);
    } else {
      okButton.focus();
    }
  });
}
