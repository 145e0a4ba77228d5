// Who is signed in. Remembered (localStorage) only when the person ticks "remember me";
// otherwise for this tab alone (sessionStorage), which a reload keeps and closing forgets.

const KEY = "riffle.session";

/** ``{userId, token, name}`` of the signed-in person, or null. */
export function loadSession() {
  for (const storage of [localStorage, sessionStorage]) {
    try {
      const session = JSON.parse(storage.getItem(KEY) || "null");
      if (session?.userId && session?.token) return session;
    } catch {
      storage.removeItem(KEY);
    }
  }
  return null;
}

export function saveSession(session, remember) {
  forgetSession();
  (remember ? localStorage : sessionStorage).setItem(KEY, JSON.stringify(session));
}

/** Sign out: the credentials, and the unfinished uploads' URLs that only they can resume. */
export function forgetSession() {
  const session = loadSession();
  localStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY);
  if (session) localStorage.removeItem(`riffle.uploads.${session.userId}`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(text) {
  return UUID.test(text.trim());
}
