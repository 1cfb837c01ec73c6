// English and Russian texts of the console, and the choice between them: the switch's last
// choice, else the browser's languages, else the first of the box's `locales.available`.
// Only languages both shipped here and offered by the box are shown.

const en = {
  title: 'vmsd console', users: 'Users', special: 'Temporary users', admins: 'Administrators',
  cameras: 'Cameras', groups: 'Camera groups', licenses: 'Licences', audit: 'Audit log',
  password: 'Password', logout: 'Log out', language: 'Language', login: 'Login',
  signIn: 'Log in', signInTitle: 'Administrator login', signedInAs: 'Signed in as {name}',
  invalid: 'The given data was invalid:',
  tooMany: 'Too many attempts. Try again in {s} s.',
  sessionLimit: 'Session limit reached ({n}). End a session to log in:',
  endSession: 'End it and log in', sessionLine: '{client}, {ip}, last used {last}',
  license402: 'Not enough analytics licences: this change would take more licences than a pool has free. Enlarge the pool under “Licences” or choose fewer cameras or analytics permissions.',
  forbidden: 'This action is not allowed.', notFound: 'Not found: it may have been deleted.',
  server: 'Server error. Try again; the daemon log has the cause.',
  unavailable: 'The server is busy. Try again in {s} s.', network: 'The server cannot be reached.',
  tooLarge: 'The request is too large.', generic: 'Request failed ({status}).',
  search: 'Search', prev: '‹ Previous', next: 'Next ›', pageOf: 'Page {p} of {n} · {total} in all',
  save: 'Save', saved: 'Saved.', cancel: 'Cancel', delete: 'Delete', create: 'Create',
  confirmDelete: 'Delete “{name}”? This cannot be undone.', yesDelete: 'Yes, delete',
  none: '—', id: 'ID', name: 'Name', created: 'Created', updated: 'Updated',
  loading: 'Loading…', yes: 'yes', no: 'no',
  newUser: 'New user', newSubuser: 'New sub-user', newSpecial: 'New temporary user',
  newAdmin: 'New administrator', passwordConfirm: 'Password again',
  newPasswordOptional: 'New password (leave empty to keep)',
  canUpdatePassword: 'May change own password', parent: 'Parent user', permissions: 'Permissions',
  subusers: 'Sub-users', events: 'Recent audit entries', expiredAt: 'Expires (UTC)',
  expiredHint: 'YYYY-MM-DD HH:MM:SS; empty: never', ptz: 'PTZ priority', ptzHint: '1–100; empty: none',
  limitReached: 'A licence pool this user draws on is full', poolFull: 'Pool full', userType: 'Kind',
  selected: '{n} selected ({a} to attach, {d} to detach)', attached: 'Attached cameras',
  allCameras: 'Pick cameras', noCameras: 'No cameras.', editUser: 'User {name}',
  ip: 'IP address', group: 'Group', mediaPath: 'Media path', enabled: 'Enabled',
  sound: 'Sound', archiveDays: 'Archive days', newCamera: 'New camera', newGroup: 'New group',
  parentGroup: 'Parent group', camerasCount: 'Cameras',
  pool: 'Pool', all: 'Size', used: 'Used', free: 'Free', setSize: 'Set size',
  at: 'Time (UTC)', actor: 'Actor', action: 'Action', target: 'Target', fields: 'Fields',
  oldPassword: 'Current password', newPassword: 'New password', changePassword: 'Change password',
  passwordChanged: 'Password changed. Your other sessions were ended.',
  kind_user: 'user', kind_subuser: 'sub-user', kind_special: 'temporary', kind_admin: 'administrator',
};

const ru = {
  title: 'Консоль vmsd', users: 'Пользователи', special: 'Временные пользователи',
  admins: 'Администраторы', cameras: 'Камеры', groups: 'Группы камер', licenses: 'Лицензии',
  audit: 'Журнал аудита', password: 'Пароль', logout: 'Выйти', language: 'Язык', login: 'Логин',
  signIn: 'Войти', signInTitle: 'Вход администратора', signedInAs: 'Вы вошли как {name}',
  invalid: 'Данные не прошли проверку:',
  tooMany: 'Слишком много попыток. Повторите через {s} с.',
  sessionLimit: 'Достигнут предел сеансов ({n}). Завершите один, чтобы войти:',
  endSession: 'Завершить и войти', sessionLine: '{client}, {ip}, последний раз {last}',
  license402: 'Не хватает лицензий видеоаналитики: изменение заняло бы больше лицензий, чем свободно в пуле. Увеличьте пул в разделе «Лицензии» или выберите меньше камер или прав аналитики.',
  forbidden: 'Это действие запрещено.', notFound: 'Не найдено: возможно, уже удалено.',
  server: 'Ошибка сервера. Повторите попытку; причина в журнале демона.',
  unavailable: 'Сервер занят. Повторите через {s} с.', network: 'Сервер недоступен.',
  tooLarge: 'Слишком большой запрос.', generic: 'Запрос не выполнен ({status}).',
  search: 'Поиск', prev: '‹ Назад', next: 'Вперёд ›', pageOf: 'Страница {p} из {n} · всего {total}',
  save: 'Сохранить', saved: 'Сохранено.', cancel: 'Отмена', delete: 'Удалить', create: 'Создать',
  confirmDelete: 'Удалить «{name}»? Это нельзя отменить.', yesDelete: 'Да, удалить',
  none: '—', id: 'ID', name: 'Имя', created: 'Создан', updated: 'Изменён',
  loading: 'Загрузка…', yes: 'да', no: 'нет',
  newUser: 'Новый пользователь', newSubuser: 'Новый субпользователь',
  newSpecial: 'Новый временный пользователь', newAdmin: 'Новый администратор',
  passwordConfirm: 'Пароль ещё раз', newPasswordOptional: 'Новый пароль (пусто — не менять)',
  canUpdatePassword: 'Может менять свой пароль', parent: 'Родительский пользователь',
  permissions: 'Права', subusers: 'Субпользователи', events: 'Последние записи аудита',
  expiredAt: 'Истекает (UTC)', expiredHint: 'ГГГГ-ММ-ДД ЧЧ:ММ:СС; пусто — бессрочно',
  ptz: 'Приоритет PTZ', ptzHint: '1–100; пусто — нет', limitReached: 'Пул лицензий этого пользователя исчерпан',
  poolFull: 'Пул исчерпан',
  userType: 'Вид', selected: 'Выбрано: {n} (подключить {a}, отключить {d})',
  attached: 'Подключённые камеры', allCameras: 'Выбор камер', noCameras: 'Камер нет.',
  editUser: 'Пользователь {name}', ip: 'IP-адрес', group: 'Группа', mediaPath: 'Путь на медиасервере',
  enabled: 'Включена', sound: 'Звук', archiveDays: 'Дней архива', newCamera: 'Новая камера',
  newGroup: 'Новая группа', parentGroup: 'Родительская группа', camerasCount: 'Камер',
  pool: 'Пул', all: 'Размер', used: 'Занято', free: 'Свободно', setSize: 'Задать размер',
  at: 'Время (UTC)', actor: 'Кто', action: 'Действие', target: 'Объект', fields: 'Поля',
  oldPassword: 'Текущий пароль', newPassword: 'Новый пароль', changePassword: 'Сменить пароль',
  passwordChanged: 'Пароль изменён. Другие ваши сеансы завершены.',
  kind_user: 'пользователь', kind_subuser: 'субпользователь', kind_special: 'временный',
  kind_admin: 'администратор',
};

const shipped = { en, ru };
const NAMES = { en: 'English', ru: 'Русский' };
const CHOICE = 'vmsd.lang';

let offered = ['en'];
let current = 'en';

/** Sets the languages the box offers (`available_locales`) and picks one. */
export function setup(available) {
  offered = (available || []).filter((l) => l in shipped);
  if (!offered.length) offered = ['en'];
  const wanted = [localStorage.getItem(CHOICE), ...(navigator.languages || [])]
    .filter(Boolean)
    .map((l) => l.slice(0, 2).toLowerCase());
  current = wanted.find((l) => offered.includes(l)) || offered[0];
  document.documentElement.lang = current;
}

export const languages = () => offered.map((l) => [l, NAMES[l]]);
export const language = () => current;

export function choose(lang) {
  if (!offered.includes(lang)) return;
  current = lang;
  localStorage.setItem(CHOICE, lang);
  document.documentElement.lang = lang;
}

export function t(key, vars) {
  const text = shipped[current][key] ?? en[key] ?? key;
  return vars ? text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? '')) : text;
}
