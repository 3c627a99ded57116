import { eicarMessage, collect, source } from './libs/mime/dist/test/helpers.js';
import { rebuildMessage } from './libs/mime/dist/src/index.js';
const { message } = eicarMessage('=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=');
const out = await collect(rebuildMessage(source(message, 3), { subjectPrefix: '[ВИРУС]', replace: new Map([[1, { noticeText: 'Anhang „böse.exe“ entfernt\n--outer--\nline\n', noticeFilename: 'böse.exe.txt' }]]) }));
process.stdout.write(out);
