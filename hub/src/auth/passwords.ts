/**
 * Password policy: at least 8 characters, not the username (in any case,
 * nor reversed), not one of the most common passwords (the top of the public
 * breach-frequency lists, plus the Chinese favourites), not one character
 * repeated. Short on purpose: length and the deny-list do most of the work
 * (NIST SP 800-63B 5.1.1.2).
 */
import { Errors } from '../core/errors.js';

const COMMON = `
password password1 password12 password123 password1234 passw0rd p@ssw0rd p@ssword pa55word pa$$w0rd
12345678 123456789 1234567890 12345678910 0123456789 987654321 87654321 98765432 1234567899 123123123 1231231234
11111111 22222222 33333333 44444444 55555555 66666666 77777777 88888888 99999999 00000000 111111111 1111111111
12341234 12344321 11223344 11112222 12121212 13131313 12312312 123456123 147258369 741852963 159357456 123654789
qwertyui qwertyuiop qwerty12 qwerty123 qwerty1234 qwertyu1 1qaz2wsx 2wsx3edc 1q2w3e4r 1q2w3e4r5t q1w2e3r4 q1w2e3r4t5
zaq12wsx zxcvbnm1 zxcvbnm123 asdfghjk asdfghjkl asdf1234 qwer1234 1234qwer 1234asdf abcd1234 abc12345 abcdefgh
a1b2c3d4 a12345678 aa123456 aa12345678 qq123456 abc123456 123456abc 123456aa 123qweasd qweasdzxc qazwsxedc
iloveyou iloveyou1 sunshine princess football baseball basketball superman batman12 trustno1 letmein1 letmeinnow
welcome1 welcome123 welcome! dragon12 monkey12 master12 michael1 shadow12 starwars whatever jennifer computer
internet corvette mercedes mustang1 freedom1 charlie1 access14 maverick midnight sunshine1 chocolate butterfly
admin123 admin1234 admin12345 administrator adminadmin rootroot root1234 changeme changeme1 default1 secret12
test1234 testtest 12345qwert guest123 user1234 login123 gridlink gridlink1 gridlink123
woaini1314 woaini520 woaini123 5201314520 1314520520 5211314521 52013141314 woshishui zhangwei wangwei liuyang
aini1314 iloveyou520 88888888a a88888888 12345678a a123456789 qq123456789 xiaoming 1qazxsw2 !qaz2wsx
`.split(/\s+/).filter(Boolean);

const COMMON_SET = new Set(COMMON.map((p) => p.toLowerCase()));

/** Throws 400 PASSWORD_WEAK when the password breaks the policy. */
export function assertPasswordPolicy(password: string, username: string): void {
  const weak = (why: string) => Errors.passwordWeak(`password ${why}`);
  if (password.length < 8) throw weak('must have at least 8 characters');
  if (password.length > 256) throw weak('must have at most 256 characters');
  const p = password.toLowerCase();
  const u = username.toLowerCase();
  if (p === u || p === [...u].reverse().join('')) throw weak('must not be the username');
  if (COMMON_SET.has(p)) throw weak('is one of the most common passwords');
  if (/^(.)\1+$/.test(password)) throw weak('must not repeat one character');
}

export const COMMON_PASSWORD_COUNT = COMMON_SET.size;
