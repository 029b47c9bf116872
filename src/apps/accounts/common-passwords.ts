/**
 * Passwords too common to accept: the most frequent entries of public breach lists (lower case).
 * Small on purpose; the length rule does most of the work.
 */
export const COMMON_PASSWORDS = new Set([
  '123456', '123456789', '12345678', 'password', 'qwerty123', 'qwerty1', '111111', '12345', 'secret',
  '123123', '1234567890', '1234567', '000000', 'qwerty', 'abc123', 'password1', 'iloveyou', 'aa12345678',
  'password123', 'password1234', 'qwertyuiop', '1q2w3e4r5t', '1q2w3e4r', 'qwe123', '123qwe', 'zxcvbnm',
  '1qaz2wsx', 'asdfghjkl', 'dragon', 'monkey', 'letmein', 'football', 'baseball', 'welcome', 'welcome1',
  'welcome123', 'admin', 'admin123', 'administrator', 'login', 'passw0rd', 'p@ssw0rd', 'p@ssword',
  'master', 'hello123', 'freedom', 'whatever', 'trustno1', 'sunshine', 'princess', 'starwars', 'shadow',
  'superman', 'batman', 'michael', 'charlie', 'jennifer', 'jordan23', 'liverpool', 'chelsea', 'arsenal',
  'computer', 'internet', 'changeme', 'changeme123', 'default', 'test1234', 'testtest', 'test123456',
  'qazwsx', 'qazwsxedc', '1qazxsw2', 'asdf1234', 'asdfasdf', 'zaq12wsx', '987654321', '11111111',
  '00000000', '12341234', '11223344', '123321', '654321', '666666', '777777', '888888', '999999',
  '121212', '112233', 'a1b2c3d4', 'abcd1234', 'abcdefg', 'abcdefgh', 'abcdefghij', 'letmein123',
  'iloveyou1', 'loveyou', 'lovely', 'flower', 'summer', 'winter', 'spring2024', 'summer2024', 'autumn',
  'football1', 'soccer', 'hockey', 'killer', 'pokemon', 'minecraft', 'fortnite', 'google', 'facebook',
  'instagram', 'linkedin', 'samsung', 'apple123', 'iphone', 'qwertyui', 'q1w2e3r4', 'q1w2e3r4t5',
  'q1w2e3r4t5y6', 'zxcvbnm123', 'asdfghjkl1', 'mustang', 'ferrari', 'porsche', 'mercedes', 'michelle',
  'jessica', 'ashley', 'daniel', 'thomas', 'matthew', 'andrew', 'joshua', 'hunter', 'hunter2', 'ranger',
  'buster', 'tigger', 'cookie', 'pepper', 'ginger', 'maggie', 'bailey', 'secret123', 'mypassword',
  'yourpassword', 'newpassword', 'passpass', 'pass1234', 'pa55word', 'pa$$w0rd', 'qwerty12345',
  'qwerty123456', 'shop1234', 'shopping', 'ecommerce', 'customer', 'welcome2024', 'password2024',
  'password2025', 'password2026', 'letmein2026', 'changeit', 'temp1234', 'temporary', 'guest1234',
])
